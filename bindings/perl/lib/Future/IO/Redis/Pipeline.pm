package Future::IO::Redis::Pipeline;

use strict;
use warnings;

our $VERSION = '0.001';

use Future;

sub new {
    my ($class, %args) = @_;
    return bless { redis => $args{redis}, cmds => [] }, $class;
}

# Queue any command: $p->command('SET', 'k', 'v'). Returns the pipeline, so
# calls chain: $p->set(...)->incr(...).
sub command {
    my ($self, @args) = @_;
    push @{ $self->{cmds} }, \@args;
    return $self;
}

sub count { scalar @{ $_[0]{cmds} } }

# Send every queued command in one write; the future is an array ref of
# their replies, in order. A command the server refused has a
# Future::IO::Redis::Error::Redis object in its slot; a connection failure
# fails the whole future. The pipeline is empty afterwards.
sub execute {
    my ($self) = @_;
    my @cmds = splice @{ $self->{cmds} };
    return Future->done([]) unless @cmds;
    my $redis = $self->{redis};
    # Under a WATCH the client's connection is reserved: through it (Watch.pm).
    return $redis->_watch_pipeline(@cmds) if $redis->{watch};
    my $f = Future::IO::Redis::_new_future();
    my $ok = eval { Future::IO::Redis::_XS::batch_exec($redis->{c}, $f, 0, @cmds); 1 };
    return Future::IO::Redis::_failed($@) unless $ok;
    return $f;
}

# Every Redis command as a method, queued: one call, one array.
Future::IO::Redis::Commands->install(__PACKAGE__, sub {
    my @words = @_;
    return sub { my $self = shift; push @{ $self->{cmds} }, [@words, @_]; $self };
});

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

=cut
