package Future::IO::Redis::Watch;

use strict;
use warnings;

our $VERSION = '0.001';

# watch, unwatch and watch_multi of Future::IO::Redis (this file defines
# them in that package; Future::IO::Redis loads it).
#
# aredis does WATCH through a transaction (aredis_tx) that reserves the
# connection from the WATCH until its EXEC or DISCARD: other commands issued
# on the client meanwhile wait and go out right behind the EXEC. So while a
# client watches ($self->{watch}, the aredis_tx), its own commands go
# through the transaction (_watch_command: sent at once, ahead of what the
# reservation holds back), and its EXEC is the transaction's (_watch_exec).

package Future::IO::Redis;

use strict;
use warnings;

use Carp ();
use Future;
use Scalar::Util ();

my $ROUND = 0;    # numbers each watching transaction (addresses get reused)

sub watching { $_[0]{watch} ? 1 : 0 }

# WATCH keys: the future is WATCH's reply ('OK'). Several calls add keys.
sub watch {
    my ($self, @keys) = @_;
    return Future->fail(_error('AREDIS_ERR_INVALID', 'WATCH needs keys', '', 0)) unless @keys;
    my $f = _new_future();
    my $ok = eval {
        if (!$self->{watch}) {
            $self->{watch} = Future::IO::Redis::_XS::tx_new($self->{c});
            $self->{watch_round} = ++$ROUND;
        }
        Future::IO::Redis::_XS::tx_watch($self->{watch}, $f, @keys);
        1;
    };
    if (!$ok) {
        my $e = $@;
        # Refused: what this round watched (if anything) is gone too.
        $self->_watch_end;
        return _failed($e);
    }
    return $f;
}

# Stop watching (UNWATCH; a MULTI begun under the WATCH is dropped too).
sub unwatch {
    my ($self) = @_;
    $self->_watch_end;
    return Future->done('OK');
}

# The transaction's end: freeing a watching aredis_tx sends UNWATCH and
# ends the reservation; one that executed already is simply freed.
sub _watch_end {
    my ($self) = @_;
    delete $self->{watch_queue};
    if (my $tx = delete $self->{watch}) {
        Future::IO::Redis::_XS::tx_free($tx);
    }
    return;
}

# A command while watching. MULTI, EXEC and DISCARD sent by hand (as the
# reference design's manual WATCH / MULTI / EXEC) become the transaction's:
# commands after MULTI are queued (their futures say QUEUED) and EXEC sends
# MULTI ... EXEC under the WATCH.
sub _watch_command {
    my ($self, @args) = @_;
    my $tx = $self->{watch} or return $self->command(@args);
    my $name = uc($args[0] // '');
    if ($name eq 'WATCH') {
        shift @args;
        return $self->watch(@args);
    }
    return $self->unwatch if $name eq 'UNWATCH';
    if (my $q = $self->{watch_queue}) {
        return $self->_watch_exec(@$q) if $name eq 'EXEC';
        return $self->unwatch if $name eq 'DISCARD';    # DISCARD unwatches too
        if ($name eq 'MULTI') {
            return Future->fail(Future::IO::Redis::Error::Redis->from_message(
                'ERR MULTI calls can not be nested'));
        }
        push @$q, [@args];
        return Future->done('QUEUED');
    }
    if ($name eq 'MULTI') {
        $self->{watch_queue} = [];
        return Future->done('OK');
    }
    my $f = _new_future();
    my $ok = eval { Future::IO::Redis::_XS::tx_command($tx, $f, @args); 1 };
    return _failed($@) unless $ok;
    return $f;
}

# MULTI, the commands (array refs) and EXEC under the WATCH; the watch
# ends. The future is EXEC's reply: an array ref of results, or undef when
# a watched key changed.
sub _watch_exec {
    my ($self, @cmds) = @_;
    my $tx = delete $self->{watch};
    delete $self->{watch_queue};
    return Future->fail(_error('AREDIS_ERR_INVALID', 'not watching', '', 0)) unless $tx;
    if (!@cmds) {
        # An empty MULTI ... EXEC: nothing to run, the watch ends.
        Future::IO::Redis::_XS::tx_free($tx);
        return Future->done([]);
    }
    my $f = _new_future();
    my $ok = eval { Future::IO::Redis::_XS::tx_exec($tx, $f, @cmds); 1 };
    my $e = $@;
    # An exec under way goes on; a refused one leaves the transaction
    # watching, and freeing it sends UNWATCH.
    Future::IO::Redis::_XS::tx_free($tx);
    return _failed($e) unless $ok;
    return $f;
}

# Pipelines while watching: each command through the transaction (a
# pipeline of the client would wait behind the reservation). The future is
# the array ref of replies, a command the server refused with its error
# object in its slot; any other failure fails it.
sub _watch_pipeline {
    my ($self, @cmds) = @_;
    my @f = map {
        $self->_watch_command(@$_)->else(sub {
            my ($e) = @_;
            return Scalar::Util::blessed($e) && $e->isa('Future::IO::Redis::Error::Redis')
                ? Future->done($e)
                : Future->fail(@_);
        });
    } @cmds;
    return Future->done([]) unless @f;
    return Future->needs_all(@f)->then(sub { Future->done([@_]) });
}

# watch_multi([keys], sub { my ($tx, $values) = @_; ... }): WATCH the keys,
# GET their values, call the code with a transaction and the values (a hash
# ref, key => value), then MULTI ... EXEC what it queued. The future is
# the array ref of results, undef when a watched key changed in between
# (retry), [] when the code queued nothing.
sub watch_multi {
    my ($self, $keys, $code) = @_;
    Carp::croak('watch_multi: an array ref of keys and a code ref')
        unless ref $keys eq 'ARRAY' && @$keys && ref $code eq 'CODE';
    my @keys = @$keys;
    my $w = $self->watch(@keys);
    return $w if $w->is_ready && $w->failure;
    my $round = $self->{watch_round};
    my @reads = map { $self->_watch_command('GET', $_) } @keys;
    # Ends this round's watch when something failed before its exec (a
    # later round, started meanwhile, is left alone).
    my $end = sub {
        $self->_watch_end if $self->{watch} && $self->{watch_round} == $round;
        return;
    };
    return Future->needs_all($w, @reads)->then(sub {
        my (undef, @values) = @_;
        my %values;
        @values{@keys} = @values;
        my $t = Future::IO::Redis::Transaction->new(redis => $self);
        my $r = $code->($t, \%values);
        my $ready = Scalar::Util::blessed($r) && $r->isa('Future') ? $r : Future->done;
        return $ready->then(sub {
            return Future->fail(_error('AREDIS_ERR_IO',
                    'watch_multi: the watch ended inside the callback (unwatch, exec?)', '', 0))
                unless $self->{watch} && $self->{watch_round} == $round;
            my @cmds = splice @{ $t->{cmds} };
            return $self->_watch_exec(@cmds);
        });
    })->on_fail($end)->on_cancel($end);
}

1;

__END__

=head1 NAME

Future::IO::Redis::Watch - WATCH, UNWATCH and check-and-set transactions

=head1 SYNOPSIS

    # Check-and-set: the transaction runs only if 'balance' did not change.
    my $results = await $redis->watch_multi(['balance'], async sub {
        my ($tx, $values) = @_;
        $tx->set('balance', $values->{balance} - 10);
    });
    if (!defined $results) { ... 'balance' changed: read again, retry ... }

    # By hand.
    await $redis->watch('k1', 'k2');
    my $v = await $redis->get('k1');
    my $r = await $redis->multi(sub { $_[0]->set('k2', $v) });  # undef if k1/k2 changed
    await $redis->unwatch;    # when giving up instead

=head1 DESCRIPTION

Loaded by L<Future::IO::Redis>: these are its methods.

A WATCH belongs to a connection, so between C<watch> and the C<EXEC> that
ends it the client's connection is reserved for the watching code: the
client's own commands (C<get> above, through C<command>) are sent at once,
while commands that aredis is asked for in other ways wait and go out right
behind the EXEC. Keep the time between WATCH and EXEC short, or use a
connection of its own (L<Future::IO::Redis::Pool>).

If the connection is lost after the WATCH, the server forgot it: the EXEC
then fails (a L<Future::IO::Redis::Error::Connection>, "connection lost
after WATCH") instead of running unwatched; watch and read again.

=head1 METHODS

=head2 watch(@keys)

WATCH the keys (with the client's C<prefix>). A future of C<'OK'>. Calls
add keys to the same watch.

=head2 unwatch

Stop watching (and drop a MULTI begun by hand under the watch). A future
of C<'OK'>.

=head2 watching

True between C<watch> and the EXEC, DISCARD or C<unwatch> that ends it.

=head2 watch_multi(\@keys, $code)

WATCH the keys, GET their values, call C<< $code->($tx, \%values) >> with
a L<Future::IO::Redis::Transaction> and a hash ref of the values (undef for
a missing key), wait for the future it returns (if it returns one), then
send MULTI, the commands it queued and EXEC. The future is an array ref of
the commands' results, B<undef> when a watched key changed after the WATCH
(nothing ran: retry), or C<[]> when the code queued nothing (the watch
ends). When the code dies or its future fails, the watch ends and the
future fails with that error.

=cut
