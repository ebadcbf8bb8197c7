package Future::IO::Redis::Pipeline;

use strict;
use warnings;

our $VERSION = '0.001';

use Future;

# The commands are encoded into an aredis pipeline as they are queued
# (fio_pipe.c): the object carries it (freed with the object), and its
# command methods are XSUBs.
sub new {
    my ($class, %args) = @_;
    my $self = bless { redis => $args{redis} }, $class;
    Future::IO::Redis::_XS::pipe_attach($self, $args{redis}{c} // 0);
    return $self;
}

sub count { Future::IO::Redis::_XS::pipe_count($_[0]) }

# Send every queued command in one write; the future is an array ref of
# their replies, in order. A command the server refused has a
# Future::IO::Redis::Error::Redis object in its slot; a connection failure
# fails the whole future, and so does the first command that could not be
# queued (undef or wide characters in it, a command refused in a pipeline:
# nothing is sent). The pipeline is empty afterwards.
sub execute {
    my ($self) = @_;
    my $redis = $self->{redis};
    my $f = Future::IO::Redis::_new_future();
    my $r = eval { Future::IO::Redis::_XS::pipe_exec($self, $f, $redis->{watch}) };
    return Future::IO::Redis::_failed($@) unless defined $r;
    return $r ? $f : Future->done([]) unless ref $r;
    # Begun while watching: the commands as arrays. Under a WATCH the
    # client's connection is reserved: through it (Watch.pm); the watch
    # over, as a pipeline of the client.
    return $redis->_watch_pipeline(@$r) if $redis->{watch};
    my $ok = eval { Future::IO::Redis::_XS::batch_exec($redis->{c}, $f, 0, @$r); 1 };
    return Future::IO::Redis::_failed($@) unless $ok;
    return $f;
}

# Future::IO::Redis calls this once the XS is loaded.
sub _install {
    # Queue any command: $p->command('SET', 'k', 'v'). Returns the
    # pipeline, so calls chain: $p->set(...)->incr(...). A bad argument
    # does not die here: execute fails with its error.
    no warnings 'once';
    *command = \&Future::IO::Redis::_XS::pipe_command;
    # Every Redis command as a method: an XSUB with the command's words
    # that queues it.
    Future::IO::Redis::Commands->install(__PACKAGE__, \&Future::IO::Redis::_XS::pipe_method);
}

1;

__END__

=head1 NAME

Future::IO::Redis::Pipeline - commands sent together, replies together

=head1 SYNOPSIS

    my $pipeline = $redis->pipeline;
    $pipeline->set('k1', 'v1');
    $pipeline->incr('counter');
    my $results = await $pipeline->execute;   # ['OK', 1]

=head1 DESCRIPTION

Every Redis command is a method that queues the command (and returns the
pipeline, so calls chain). C<execute> sends them all in one write and
resolves with an array ref of their replies, in order.

A command the server answers with an error has a
L<Future::IO::Redis::Error::Redis> object in its slot: the others'
results are still there. A connection failure fails the whole future.

=head1 METHODS

=head2 command(@words)

Queue any command.

=head2 count

How many commands are queued.

=head2 execute

Send them; a future of the array ref of replies. The pipeline is empty
afterwards and may be used again.

A command that cannot be queued (an undef argument, a string with
characters above 0xFF, a command refused in a pipeline such as AUTH or
SUBSCRIBE) does not die where it is queued: C<execute> fails with the error
object the same command would die with on its own (the first such error),
and nothing of the batch is sent.

Under a WATCH (L<Future::IO::Redis::Watch>) a pipeline's commands go
through the watching transaction. A batch begun while the client watches
runs that way (or, if the watch ended before C<execute>, as an ordinary
pipeline); a batch begun before the client started watching cannot, and
its C<execute> under the WATCH fails (queue the commands again). When the
client is freed, or a pool's connection given back, its pipelines'
C<execute> fails with a L<Future::IO::Redis::Error::Disconnected>.

=cut
