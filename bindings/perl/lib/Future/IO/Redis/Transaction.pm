package Future::IO::Redis::Transaction;

use strict;
use warnings;

our $VERSION = '0.001';

use Future;

sub new {
    my ($class, %args) = @_;
    return bless { redis => $args{redis}, cmds => [] }, $class;
}

sub command {
    my ($self, @args) = @_;
    push @{ $self->{cmds} }, \@args;
    return $self;
}

sub count { scalar @{ $_[0]{cmds} } }

# MULTI, the queued commands and EXEC in one write. The future is EXEC's
# reply: an array ref of the commands' results (error replies as
# Future::IO::Redis::Error::Redis objects in their slots), or undef when a
# WATCHed key changed and the server aborted the transaction.
sub exec {
    my ($self) = @_;
    my @cmds = splice @{ $self->{cmds} };
    # Nothing queued: nothing to send (the reference design answers []).
    return Future->done([]) unless @cmds;
    my $redis = $self->{redis};
    # Under a WATCH: the watching transaction's EXEC (Watch.pm).
    return $redis->_watch_exec(@cmds) if $redis->{watch};
    my $f = Future::IO::Redis::_new_future();
    my $ok = eval { Future::IO::Redis::_XS::batch_exec($redis->{c}, $f, 1, @cmds); 1 };
    return Future::IO::Redis::_failed($@) unless $ok;
    return $f;
}

sub discard { @{ $_[0]{cmds} } = (); return }

Future::IO::Redis::Commands->install(__PACKAGE__);

1;

__END__

=head1 NAME

Future::IO::Redis::Transaction - MULTI ... EXEC

=head1 SYNOPSIS

    my $results = await $redis->multi(async sub {
        my ($tx) = @_;
        $tx->set('k1', 'v1');
        $tx->incr('counter');
    });

=head1 DESCRIPTION

Every Redis command is a method that queues the command. C<exec> sends
MULTI, the commands and EXEC in one write; its future is EXEC's reply, an
array ref of the results, or undef when the transaction was aborted
because a watched key changed. L<Future::IO::Redis/multi> calls your code
with the transaction and then C<exec>.

=head1 METHODS

=head2 command(@words)

Queue any command.

=head2 count

How many commands are queued.

=head2 exec

Send it: a future of the results.

=head2 discard

Drop what is queued.

=cut
