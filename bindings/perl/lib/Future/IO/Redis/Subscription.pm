package Future::IO::Redis::Subscription;

# Pub/sub for Future::IO::Redis: an aredis_subscription (fio_sub.c) behind
# the reference design's Subscription object. aredis keeps the names,
# replays them after a reconnect, buffers messages (bounded) and never mixes
# them with command replies; this side tracks the names for channels() &
# co., turns messages into futures and runs the callbacks.

use strict;
use warnings;
use 5.018;

our $VERSION = '0.001';

use Carp ();
use Future;
use Scalar::Util ();

use Future::IO::Redis::Error;
use Future::IO::Redis::Error::Disconnected;

# Messages held for next_message/next when nobody asks (per subscription,
# fixed when it is made): past it the oldest is dropped.
our $MAX_BUFFERED = 10000;

# aredis_sub_kind
use constant { CHANNEL => 0, PATTERN => 1, SHARD => 2 };
my @COMMAND = (
    [qw(SUBSCRIBE PSUBSCRIBE SSUBSCRIBE)],
    [qw(UNSUBSCRIBE PUNSUBSCRIBE SUNSUBSCRIBE)],
);

# Made by Future::IO::Redis's subscribe/psubscribe/ssubscribe: one open
# subscription per client, which holds it; it holds the client weakly.
sub _new {
    my ($class, $redis) = @_;
    Future::IO::Redis::Error::Disconnected->throw(message => 'the client is gone')
        unless $redis->{c};
    my $self = bless {
        redis      => $redis,
        names      => [{}, {}, {}],    # by kind: name => 1
        closed     => 0,
        on_message => undef,
        pump       => undef,           # on_message's pending message future
    }, $class;
    Scalar::Util::weaken($self->{redis});
    my $max = $redis->{args}{subscription_buffer} // $MAX_BUFFERED;
    Carp::croak("Future::IO::Redis::Subscription: the buffer bound must be a positive integer")
        unless $max =~ /^[0-9]+\z/ && $max > 0;
    $self->{ps} = Future::IO::Redis::_XS::sub_new($redis->{c}, $self, $max);
    return $self;
}

sub _done { Future::IO::Redis::_new_future()->done(@_) }

sub _closed_error {
    Future::IO::Redis::Error::Disconnected->new(
        message => 'the subscription is closed',
        code    => 'AREDIS_ERR_CLOSED',
    );
}

# (Un)subscribe names of a kind; the future resolves with $self once the
# server confirmed.
sub _call {
    my ($self, $unsub, $kind, @names) = @_;
    my $set = $self->{names}[$kind];
    if ($unsub) {
        return _done($self) if $self->{closed};
        @names = keys %$set unless @names;
        if (!@names) {
            $self->_close unless $self->channel_count;
            return _done($self);
        }
    } else {
        return Future->fail(_closed_error()) if $self->{closed};
        return Future->fail(Future::IO::Redis::Error->new(
            message => "$COMMAND[0][$kind]: no names given", code => 'AREDIS_ERR_INVALID'))
            unless @names;
    }
    my %seen;
    my @new = $unsub ? () : grep { !$set->{$_} && !$seen{$_}++ } @names;
    my $f = Future::IO::Redis::_new_future();
    my $ok = eval { Future::IO::Redis::_XS::sub_call($self->{ps}, $unsub, $kind, $f, @names); 1 };
    return Future->fail($@) unless $ok;
    # aredis holds (or has dropped) the names from the call on.
    if ($unsub) {
        delete @{$set}{@names};
    } else {
        $set->{$_} = 1 for @names;
    }
    return $f->then(
        sub {
            $self->_close if $unsub && !$self->{closed} && !$self->channel_count;
            return Future->done($self);
        },
        sub {
            my ($e) = @_;
            # The server refused (an ACL's NOPERM): the names this call
            # brought are not held. Other failures (timeout, connection)
            # keep them: aredis subscribes them anyway.
            delete @{$set}{@new}
                if !$unsub && Scalar::Util::blessed($e)
                && $e->isa('Future::IO::Redis::Error::Redis');
            return Future->fail(@_);
        },
    );
}

sub subscribe    { my $self = shift; $self->_call(0, CHANNEL, @_) }
sub psubscribe   { my $self = shift; $self->_call(0, PATTERN, @_) }
sub ssubscribe   { my $self = shift; $self->_call(0, SHARD, @_) }
sub unsubscribe  { my $self = shift; $self->_call(1, CHANNEL, @_) }
sub punsubscribe { my $self = shift; $self->_call(1, PATTERN, @_) }
sub sunsubscribe { my $self = shift; $self->_call(1, SHARD, @_) }

sub channels         { keys %{ $_[0]{names}[CHANNEL] } }
sub patterns         { keys %{ $_[0]{names}[PATTERN] } }
sub sharded_channels { keys %{ $_[0]{names}[SHARD] } }

sub channel_count {
    my ($self) = @_;
    my $n = 0;
    $n += keys %$_ for @{ $self->{names} };
    return $n;
}

sub is_closed { $_[0]{closed} ? 1 : 0 }

sub stats {
    my ($self) = @_;
    return { delivered => 0, dropped => 0, resubscribes => 0, buffered => 0 } unless $self->{ps};
    return Future::IO::Redis::_XS::sub_stats($self->{ps});
}

# What a reconnect sends again (aredis sends it by itself: for inspection).
sub get_replay_commands {
    my ($self) = @_;
    my @cmds;
    for my $kind (CHANNEL, PATTERN, SHARD) {
        my @n = sort keys %{ $self->{names}[$kind] };
        push @cmds, [$COMMAND[0][$kind], @n] if @n;
    }
    return @cmds;
}

# ---- Messages -------------------------------------------------------------------

sub next_message { $_[0]->_next(0, 0) }
sub next         { $_[0]->_next(1, 0) }

sub _next {
    my ($self, $data_key, $pump) = @_;
    return _done(undef) if $self->{closed} || !$self->{ps};
    return Future->fail(Future::IO::Redis::Error->new(
        message => 'messages go to the on_message callback', code => 'AREDIS_ERR_INVALID'))
        if $self->{on_message} && !$pump;
    my $f = Future::IO::Redis::_new_future();
    my $pending;
    my $ok = eval { $pending = Future::IO::Redis::_XS::sub_next($self->{ps}, $f, $data_key); 1 };
    return Future->fail($@) unless $ok;
    # A future cancelled before its message came gives its turn away.
    $f->on_cancel(sub { Future::IO::Redis::_XS::sub_next_cancel($pending) }) if $pending;
    return $f;
}

sub on_message {
    my ($self, $cb) = @_;
    Carp::croak('on_message: a code ref or undef') if defined $cb && ref $cb ne 'CODE';
    $self->{on_message} = $cb;
    if ($cb) {
        $self->_pump;
    } elsif (my $p = delete $self->{pump}) {
        $p->cancel; # its message stays for next_message
    }
    return $self;
}

# Hand messages to on_message: those buffered now, then one future at a
# time (a loop, not a recursion, however many are buffered).
sub _pump {
    my ($self) = @_;
    return if $self->{pump};
    while ($self->{on_message} && !$self->{closed}) {
        my $f = $self->_next(0, 1);
        if (!$f->is_ready) {
            $self->{pump} = $f;
            Scalar::Util::weaken(my $w = $self);
            $f->on_done(sub {
                my ($msg) = @_;
                return unless $w;
                undef $w->{pump};
                return unless defined $msg;
                $w->_dispatch($msg);
                $w->_pump if $w;
            });
            return;
        }
        last if $f->is_failed;
        my ($msg) = $f->get;
        last unless defined $msg;
        $self->_dispatch($msg);
    }
    return;
}

sub _dispatch {
    my ($self, $msg) = @_;
    my $cb = $self->{on_message} or return;
    local $@;
    eval { $cb->($self, $msg); 1 }
        or warn "Future::IO::Redis::Subscription: on_message callback died: $@";
    return;
}

# ---- Events (from fio_sub.c) ---------------------------------------------------------

sub on_reconnect { $_[0]{on_reconnect} = $_[1]; $_[0] }
sub on_overflow  { $_[0]{on_overflow}  = $_[1]; $_[0] }
sub on_error     { $_[0]{on_error}     = $_[1]; $_[0] }

sub _run_cb {
    my ($self, $which, @args) = @_;
    my $cb = $self->{$which} or return 0;
    local $@;
    eval { $cb->($self, @args); 1 }
        or warn "Future::IO::Redis::Subscription: $which callback died: $@";
    return 1;
}

sub _event {
    my ($self, $name, $code, $detail, $is_conn) = @_;
    if ($name eq 'resubscribed') {
        $self->_run_cb('on_reconnect');
    } elsif ($name eq 'overflow') {
        $self->_run_cb('on_overflow', $self->stats->{dropped});
    } elsif ($name eq 'dropped') {
        # The server dropped a name on its own (a shard channel whose slot
        # moved): aredis no longer holds it; neither do we.
        if (defined $detail && $detail =~ /^the server dropped (.*)\z/s) {
            my $n = $1;
            for my $kind (CHANNEL, PATTERN, SHARD) {
                my $set = $self->{names}[$kind];
                next unless $set->{$n} && $self->{ps};
                delete $set->{$n}
                    if Future::IO::Redis::_XS::sub_count($self->{ps}, $kind) < keys %$set;
            }
        }
    } elsif ($name eq 'error') {
        my $e = Future::IO::Redis::_error($code, $detail, '', $is_conn);
        $self->_run_cb('on_error', $e)
            or warn "Future::IO::Redis::Subscription: could not subscribe again: $e\n";
    } elsif ($name eq 'ended') {
        $self->_close;
    }
    return;
}

# The end: no more messages; pending and later next_message give undef.
sub _close {
    my ($self) = @_;
    return if $self->{closed};
    $self->{closed} = 1;
    delete $self->{pump};
    if (my $ps = delete $self->{ps}) {
        Future::IO::Redis::_XS::sub_free($ps); # pending message futures resolve with undef
    }
    my $r = $self->{redis};
    delete $r->{_subscription}
        if $r && $r->{_subscription}
        && Scalar::Util::refaddr($r->{_subscription}) == Scalar::Util::refaddr($self);
    return;
}

sub DESTROY {
    my ($self) = @_;
    $self->{closed} = 1;
    if (my $ps = delete $self->{ps}) {
        Future::IO::Redis::_XS::sub_free($ps);
    }
    return;
}

# ---- The client's side ------------------------------------------------------------------

package Future::IO::Redis;

use strict;
use warnings;

# The client's open subscription (made on first use).
sub _subscription {
    my ($self) = @_;
    my $s = $self->{_subscription};
    return $s if $s && !$s->{closed};
    $s = Future::IO::Redis::Subscription->_new($self);
    return $self->{_subscription} = $s;
}

sub _sub_call {
    my ($self, $method, @names) = @_;
    my $s;
    my $ok = eval { $s = $self->_subscription; 1 };
    return Future->fail($@) unless $ok;
    return $s->$method(@names);
}

sub subscribe  { my $self = shift; $self->_sub_call('subscribe', @_) }
sub psubscribe { my $self = shift; $self->_sub_call('psubscribe', @_) }
sub ssubscribe { my $self = shift; $self->_sub_call('ssubscribe', @_) }

# The unsubscribe family on the client: its subscription's.
sub _unsub_call {
    my ($self, $method, @names) = @_;
    my $s = $self->{_subscription};
    return Future::IO::Redis::_new_future()->done unless $s && !$s->{closed};
    return $s->$method(@names);
}

sub unsubscribe  { my $self = shift; $self->_unsub_call('unsubscribe', @_) }
sub punsubscribe { my $self = shift; $self->_unsub_call('punsubscribe', @_) }
sub sunsubscribe { my $self = shift; $self->_unsub_call('sunsubscribe', @_) }

sub in_pubsub {
    my $s = $_[0]{_subscription};
    return $s && !$s->{closed} && $s->channel_count ? 1 : 0;
}

1;

__END__

=head1 NAME

Future::IO::Redis::Subscription - Redis pub/sub on Future::IO::Redis: channels, patterns, shard channels

=head1 SYNOPSIS

    use Future::AsyncAwait;
    use Future::IO::Redis;

    my $redis = Future::IO::Redis->new(host => 'localhost', reconnect => 1);
    await $redis->connect;

    my $sub = await $redis->subscribe('news', 'alerts');
    await $redis->psubscribe('log.*');       # the same $sub
    await $sub->ssubscribe('orders');        # Redis 7 shard channel

    while (my $msg = await $sub->next_message) {
        # { type => 'message', channel => 'news', message => '...' }
        # { type => 'pmessage', pattern => 'log.*', channel => 'log.web', message => '...' }
        last if $msg->{message} eq 'stop';
    }

    # Or a callback for every message:
    $sub->on_message(sub {
        my ($sub, $msg) = @_;
        print "$msg->{channel}: $msg->{message}\n";
    });
    $sub->on_reconnect(sub { warn "reconnected: messages meanwhile were lost\n" });

    # The client keeps working while subscribed (RESP3: on the same connection).
    my $v = await $redis->get('key');

    await $sub->unsubscribe('news');
    await $sub->unsubscribe;                 # every channel left
    await $sub->punsubscribe;                # every pattern: the subscription closes

=head1 DESCRIPTION

A subscription holds the channels (C<SUBSCRIBE>), patterns
(C<PSUBSCRIBE>) and shard channels (C<SSUBSCRIBE>, Redis 7) a client is
subscribed to, and hands over their messages in the order they came, as
futures (L</next_message>) or to a callback (L</on_message>). It is
aredis's C<aredis_subscription> underneath:

=over 4

=item *

B<One per client.> C<subscribe>, C<psubscribe> and C<ssubscribe> on the
client add names to the client's subscription and resolve with that same
object; the client holds it (the subscription holds the client weakly). A
new one is made once it is closed.

=item *

B<Commands keep working.> On RESP3 (the default protocol) messages come
as pushes on the client's own connection, told apart from command
replies: every command of the client goes on working while it is
subscribed. On RESP2 (C<< protocol => 2 >>) the subscription uses a
connection of its own, made with the client's options, and the client's
commands are unaffected as well.

=item *

B<Replay.> After a reconnect (C<< reconnect => 1 >>) every name is
subscribed again before anything else goes out on the new connection, and
the L</on_reconnect> callback runs: messages published while the link was
down are lost (Redis pub/sub delivers at most once).

=item *

B<Bounded.> Messages nobody has asked for yet wait in a buffer of at most
C<$Future::IO::Redis::Subscription::MAX_BUFFERED> messages (10000; read
when the subscription is made, which is at the client's first
C<subscribe>). When it is full the B<oldest> message is dropped (what a
consumer that catches up wants is the newest), L</stats> counts it under
C<dropped>, and the L</on_overflow> callback runs (once per episode: again
only after the buffer has been emptied). The client never reads further
ahead for a slow consumer than that bound. With L</on_message> the
callback runs as messages are read, and nothing is buffered.

=item *

B<Bytes.> Channels, patterns and messages are byte strings, binary safe
(C<\0> included); names given as character strings with wide characters
are refused.

=item *

B<The end.> The subscription closes when its last name is unsubscribed,
when the client disconnects (C<< $redis->disconnect >>), is closed or
freed, or gives up reconnecting. Then pending and later
L</next_message> futures resolve with C<undef>. After a disconnect, the
names are not subscribed again by a later C<< $redis->connect >>:
subscribe again (a new subscription).

=back

=head1 METHODS OF Future::IO::Redis

=head2 subscribe

    my $sub = await $redis->subscribe(@channels);

Subscribes the client to one or more channels. Returns a future that
resolves with the client's L<Future::IO::Redis::Subscription> once the
server has confirmed every channel. Messages for the channels are
delivered from the call on.

Errors (the future fails with): L<Future::IO::Redis::Error::Redis> when
the server refuses (an ACL's C<NOPERM>: none of the names is held then);
L<Future::IO::Redis::Error::Disconnected> when the client is closed or not
connected (without C<queue_during_reconnect>);
L<Future::IO::Redis::Error::Timeout> or
L<Future::IO::Redis::Error::Connection> when the confirmation did not come
(the names are kept then and subscribed after the reconnect); a
L<Future::IO::Redis::Error> (code C<AREDIS_ERR_INVALID>) for no names.

=head2 psubscribe

    my $sub = await $redis->psubscribe(@patterns);

The same for glob-style patterns (C<news.*>); their messages are of type
C<pmessage> and carry the C<pattern> that matched.

=head2 ssubscribe

    my $sub = await $redis->ssubscribe(@shard_channels);

The same for shard channels (Redis 7, C<SPUBLISH>); messages of type
C<smessage>.

=head2 unsubscribe, punsubscribe, sunsubscribe

    await $redis->unsubscribe(@channels);

The client's subscription's methods of the same names (below); a future
resolved at once when the client has no open subscription.

=head2 in_pubsub

    my $bool = $redis->in_pubsub;

1 while the client's subscription is open and holds a name, else 0.

=head1 METHODS

=head2 next_message

    my $msg = await $sub->next_message;

A future of the next message: at once when one is buffered, else when one
arrives; several pending futures are served in the order they were
asked for. It resolves with a hash ref:

    {
        type    => 'message',   # 'pmessage' for a pattern, 'smessage' for a shard channel
        channel => $channel,    # the channel it was published to
        message => $payload,    # bytes
        pattern => $pattern,    # pmessage only: the pattern that matched
    }

or with C<undef> once the subscription has ended (see L</DESCRIPTION>).
Cancelling the future gives its message to the next one asking. It fails
(C<AREDIS_ERR_INVALID>) while an L</on_message> callback is set.

=head2 next

    my $msg = await $sub->next;

As L</next_message>, with the payload under C<data> instead of C<message>
(the reference design's iterator form).

=head2 on_message

    $sub->on_message(sub { my ($sub, $msg) = @_; ... });
    $sub->on_message(undef);

Sets a callback that gets every message (the hash ref of
L</next_message>) as it is read, those buffered first; C<undef> removes it
and messages wait for L</next_message> again. Returns the subscription. A
callback that dies is reported with C<warn> and the next message is still
delivered.

=head2 subscribe, psubscribe, ssubscribe

    await $sub->subscribe(@channels);

More names of a kind on this subscription; the future resolves with the
subscription once the server has confirmed them. Errors as the client's
L</subscribe>; on a closed subscription the future fails with
L<Future::IO::Redis::Error::Disconnected>.

=head2 unsubscribe, punsubscribe, sunsubscribe

    await $sub->unsubscribe(@channels);
    await $sub->unsubscribe;            # every channel

Drops names of a kind (none given: all of that kind). Delivery of their
messages stops at the call; the future resolves with the subscription once
the server has confirmed. When no name of any kind is left, the
subscription closes (L</is_closed>). Names not held are ignored; on a
closed subscription the future resolves at once. Fails with the client's
errors (connection lost meanwhile, say); the names are dropped anyway.

=head2 channels, patterns, sharded_channels

    my @channels = $sub->channels;

The names of a kind the subscription holds (in no particular order).

=head2 channel_count

    my $n = $sub->channel_count;

How many names of every kind it holds.

=head2 is_closed

    if ($sub->is_closed) { ... }

1 once the subscription has ended, else 0.

=head2 on_reconnect

    $sub->on_reconnect(sub { my ($sub) = @_; ... });

Sets a callback run after the client reconnected and subscribed the names
again, before any message of the new connection is delivered. Messages
published while the link was down are lost. Returns the subscription.

=head2 on_overflow

    $sub->on_overflow(sub { my ($sub, $dropped_total) = @_; ... });

Sets a callback run when the buffer was full and its oldest message was
dropped (once per episode), with the number of messages dropped so far.
Returns the subscription.

=head2 on_error

    $sub->on_error(sub { my ($sub, $error) = @_; ... });

Sets a callback run when subscribing again after a reconnect failed (an
ACL now refuses a channel, say), with a L<Future::IO::Redis::Error>; the
names stay and the next reconnect tries again. Without a callback the
error is reported with C<warn>. Returns the subscription.

=head2 stats

    my $s = $sub->stats;

A hash ref of counters: C<delivered> (messages handed over), C<dropped>
(dropped for the buffer bound), C<resubscribes> (replays after a
reconnect), C<buffered> (waiting now). Zeros once closed.

=head2 get_replay_commands

    my @cmds = $sub->get_replay_commands;   # (['SUBSCRIBE', @channels], ...)

The commands a reconnect sends again (one per kind held). The client sends
them itself; this is for inspection.

=head1 SEE ALSO

L<Future::IO::Redis>, aredis's F<docs/PUBSUB.md>.

=cut
