package Future::IO::Redis::Pool;

use strict;
use warnings;
use 5.018;

our $VERSION = '0.001';

use Carp ();
use Future;
use Scalar::Util ();
use Future::IO::Redis;

# The reference design's pool options, and Future::IO::Redis->new's
# (every connection's). Not the event callbacks (a single client's) nor
# reconnect and its policy: a pool replaces connections rather than
# reconnecting them (reconnect_delay is its backoff after a failed open).
my %POOL = map { $_ => 1 } qw(
    min max acquire_timeout idle_timeout cleanup_timeout on_dirty max_age health_check_after
);
my %CLIENT = map { $_ => 1 } qw(
    host port path uri password username database tls connect_timeout read_timeout
    request_timeout prefix client_name debug protocol write_timeout blocking_timeout_buffer
    otel_tracer otel_meter reconnect_delay reconnect_delay_max max_reconnect_delay
    reconnect_jitter max_queue_size queue_size
);

sub new {
    my ($class, %args) = @_;
    for my $k (keys %args) {
        Carp::croak("Future::IO::Redis::Pool->new: unknown option '$k'")
            unless $POOL{$k} || $CLIENT{$k};
    }
    my %client = map { $_ => $args{$_} } grep { $CLIENT{$_} } keys %args;
    my $min = $args{min} // 1;
    my $max = $args{max} // 10;
    Carp::croak("Future::IO::Redis::Pool->new: min ($min) is above max ($max)") if $min > $max;
    my $ms = sub { int($_[0] * 1000 + 0.5) };
    my %pool = (
        min_connections    => $min,
        max_connections    => $max,
        acquire_timeout_ms => $ms->($args{acquire_timeout} // 5),
        idle_timeout_ms    => $ms->($args{idle_timeout} // 60),
    );
    $pool{max_age_ms} = $ms->($args{max_age}) if defined $args{max_age};
    $pool{health_check_after_ms} = $ms->($args{health_check_after})
        if defined $args{health_check_after};
    Future::IO::Redis::_XS::set_debug(1) if $args{debug};
    my $self = bless {
        args   => {%args},
        client => \%client,
        min    => $min,
        max    => $max,
        conns  => {},    # client address => its Perl object (weak)
    }, $class;
    $self->{p} = Future::IO::Redis::_XS::pool_new(
        Future::IO::Redis::_aredis_options(\%client), \%pool);
    return $self;
}

sub min { $_[0]{min} }
sub max { $_[0]{max} }

sub _gone {
    return Future->fail(Future::IO::Redis::Error::Disconnected->new(
        message => 'the pool is shut down', code => 'AREDIS_ERR_CLOSED'));
}

# A future of a connection of your own: a Future::IO::Redis object (every
# command method, pipeline, multi, watch...) until release().
sub acquire {
    my ($self) = @_;
    return _gone() unless $self->{p};
    my $f = Future::IO::Redis::_new_future();
    my $ok = eval { Future::IO::Redis::_XS::pool_acquire($self->{p}, $f, $self); 1 };
    return Future::IO::Redis::_failed($@) unless $ok;
    return $f;
}

# Called by the XS with the client an acquire got.
sub _acquired {
    my ($self, $f, $cptr) = @_;
    if ($f->is_ready || !$self->{p}) {
        # Cancelled (or the pool went) while waiting: nobody wants it.
        Future::IO::Redis::_XS::pool_release($self->{p}, $cptr) if $self->{p};
        return;
    }
    my $conn = $self->{conns}{$cptr};
    if ($conn) {
        bless $conn, 'Future::IO::Redis::Pool::Connection';
    } else {
        $conn = Future::IO::Redis::Pool::Connection->_new($self, $cptr);
        $self->{conns}{$cptr} = $conn;
        Scalar::Util::weaken($self->{conns}{$cptr});
    }
    $conn->{held} = 1;
    $conn->{pool} = $self;    # the pool lives while a connection is out
    $f->done($conn);
    return;
}

# Give a connection back. Whatever state it is in: aredis resets it (an
# open MULTI, a SELECT) or replaces it (a blocking command pending,
# subscribed...) before anyone else gets it. The object is unusable after.
sub release {
    my ($self, $conn) = @_;
    return unless Scalar::Util::blessed($conn) && $conn->{held};
    my $pool = $conn->{pool};
    return unless $pool && $pool == $self;
    $conn->_give_back;
    return;
}

# with(sub { my ($conn) = @_; ... }): acquire, run the code, release when
# the future it returns is ready (or at once when it returns something
# else, or dies). The future is the code's outcome.
sub with {
    my ($self, $code) = @_;
    return $self->acquire->then(sub {
        my ($conn) = @_;
        my @r;
        my $ok = eval { @r = $code->($conn); 1 };
        my $f = !$ok ? Future->fail($@)
            : (@r == 1 && Scalar::Util::blessed($r[0]) && $r[0]->isa('Future')) ? $r[0]
            : Future->done(@r);
        my $done = $f->followed_by(sub {
            $self->release($conn);
            return $_[0];
        });
        # Cancelled while the code runs: given back all the same.
        $done->on_cancel(sub { $self->release($conn) });
        return $done;
    });
}

# One command on a connection the pool picks, without taking it from
# anyone (aredis_pool_command): commands issued together share one.
sub command {
    my ($self, @args) = @_;
    return _gone() unless $self->{p};
    my $f = Future::IO::Redis::_new_future();
    my $ok = eval { Future::IO::Redis::_XS::pool_command($self->{p}, $f, @args); 1 };
    return Future::IO::Redis::_failed($@) unless $ok;
    return $f;
}

sub stats {
    my ($self) = @_;
    return { map { $_ => 0 } qw(active idle waiting total destroyed) } unless $self->{p};
    return Future::IO::Redis::_XS::pool_stats($self->{p});
}

# Close every connection now: waiting acquires fail, connections still out
# become unusable (their commands in flight fail).
sub shutdown {
    my ($self) = @_;
    $self->_free;
    return Future->done;
}

sub _free {
    my ($self) = @_;
    my $p = delete $self->{p} or return;
    # Transactions on the connections go before their clients.
    for my $conn (grep {defined} values %{ $self->{conns} }) {
        $conn->_watch_end if $conn->{c};
        Future::IO::Redis::Pool::Connection::_sub_end($conn);
        # Its pipelines must not queue into a client the pool frees.
        Future::IO::Redis::_XS::client_detach_pipes($conn->{c}) if $conn->{c};
        if ($conn->{held}) {
            $conn->{held} = 0;
            delete $conn->{pool};
            $conn->{gone} = 'the pool of this connection was shut down';
            bless $conn, 'Future::IO::Redis::Pool::Released';
        }
    }
    %{ $self->{conns} } = ();
    Future::IO::Redis::_XS::pool_free($p);
    return;
}

sub DESTROY {
    my ($self) = @_;
    local ($@, $!, $?);
    $self->_free;
}

# Every Redis command as a pool command: $pool->get('k').
Future::IO::Redis::Commands->install(__PACKAGE__);

# ---- A connection of the pool ------------------------------------------------------

package Future::IO::Redis::Pool::Connection;

use strict;
use warnings;

our @ISA = ('Future::IO::Redis');
our $VERSION = '0.001';

sub _new {
    my ($class, $pool, $cptr) = @_;
    my $self = bless {
        args      => $pool->{client},
        prefix    => $pool->{client}{prefix},
        connected => 1,
        waiters   => [],
        pid       => $$,
        cptr      => $cptr,
        pool_w    => $pool,
    }, $class;
    Scalar::Util::weaken($self->{pool_w});
    $self->{c} = Future::IO::Redis::_XS::pconn_new($cptr, $self);
    return $self;
}

sub connect { Future->done($_[0]) }

# The pool's connection: released, not disconnected.
sub disconnect { return }

sub is_connected {
    my ($self) = @_;
    return $self->{c} && lc(Future::IO::Redis::_XS::client_state($self->{c})) eq 'ready' ? 1 : 0;
}

sub pool { $_[0]{pool} }

# The connection's subscription ends with its loan (aredis closes a
# connection released subscribed; its subscription must go before the
# pool frees the client).
sub _sub_end {
    my ($self) = @_;
    my $s = delete $self->{_subscription} or return;
    $s->_close if $s->can('_close');
    return;
}

sub _give_back {
    my ($self) = @_;
    # What holds the connection goes first (free, then release): a
    # watching transaction (UNWATCH), a subscription (it ends).
    $self->_watch_end;
    $self->_sub_end;
    # Its pipelines fail from now on (the client is the pool's again).
    Future::IO::Redis::_XS::client_detach_pipes($self->{c}) if $self->{c};
    my $pool = delete $self->{pool};
    $self->{held} = 0;
    $self->{gone} = 'this connection was released to its pool';
    bless $self, 'Future::IO::Redis::Pool::Released';
    Future::IO::Redis::_XS::pool_release($pool->{p}, $self->{cptr}) if $pool && $pool->{p};
    return;
}

sub DESTROY {
    my ($self) = @_;
    local ($@, $!, $?);
    # Dropped without a release: given back, not leaked.
    $self->_give_back if $self->{held};
    Future::IO::Redis::Pool::Released::_forget($self);
}

# ---- A connection given back: every method fails --------------------------------------

package Future::IO::Redis::Pool::Released;

use strict;
use warnings;

our $VERSION = '0.001';

our $AUTOLOAD;

sub AUTOLOAD {
    my ($self) = @_;
    (my $m = $AUTOLOAD) =~ s/.*:://;
    return Future->fail(Future::IO::Redis::Error::Disconnected->new(
        message => "$m: $self->{gone}: acquire another connection",
        code    => 'AREDIS_ERR_CLOSED'));
}

sub is_connected { 0 }
sub watching     { 0 }
sub _watch_end   { Future::IO::Redis::_watch_end(@_) }

sub _forget {
    my ($self) = @_;
    my $pc = delete $self->{c} or return;
    my $pool = $self->{pool_w};
    if ($pool && $pool->{conns}) {
        my $e = $pool->{conns}{ $self->{cptr} };
        delete $pool->{conns}{ $self->{cptr} } if !$e || $e == $self;
    }
    Future::IO::Redis::_XS::pconn_free($pc);
    return;
}

sub DESTROY {
    my ($self) = @_;
    local ($@, $!, $?);
    _forget($self);
}

1;

__END__

=head1 NAME

Future::IO::Redis::Pool - a pool of connections, on aredis's pool

=head1 SYNOPSIS

    use Future::AsyncAwait;
    use Future::IO::Redis::Pool;

    my $pool = Future::IO::Redis::Pool->new(host => 'localhost', min => 2, max => 10);

    # The scoped form: always released, whatever happens inside.
    my $value = await $pool->with(async sub {
        my ($redis) = @_;
        await $redis->incr('counter');
        return await $redis->get('counter');
    });

    # By hand.
    my $redis = await $pool->acquire;
    await $redis->set('key', 'value');
    $pool->release($redis);

    # One command on whichever connection is free.
    my $v = await $pool->get('key');

=head1 DESCRIPTION

Connections to one server, each made with the same options, lent one user
at a time: for what needs a connection to itself for a while (a WATCH
transaction, a blocking command, a SELECTed database). aredis's
C<aredis_pool> does the work: connections are opened up to C<max>, waiters
are served in the order they came, and B<a connection is never handed on
dirty>: released inside a MULTI it gets a DISCARD, after a SELECT the
configured database back (both sent ahead of the next user's commands, no
round trip), with replies still owed it waits for them; with a blocking
command pending, a WATCH held, or subscribed it is closed and replaced.
A connection that was lost is replaced, and one idle for long is PINGed
before it is lent.

A connection lent is a L<Future::IO::Redis> (every command method,
C<pipeline>, C<multi>, C<watch>, C<watch_multi>, C<script>...). After its
release the same object answers every method with a failed future (a
L<Future::IO::Redis::Error::Disconnected>): it cannot run commands on a
connection that is someone else's. One dropped without a release is
released. Acquiring may give the same object again.

=head1 CONSTRUCTOR

=head2 new(%options)

Every connection's options are those of L<Future::IO::Redis/new> (C<host>,
C<port>, C<path>, C<uri>, C<password>, C<username>, C<database>, C<tls>,
C<connect_timeout>, C<request_timeout>, C<prefix>, C<client_name>,
C<protocol>...). Not C<on_connect>, C<on_disconnect>, C<on_error>, nor
C<reconnect>: a pool replaces lost connections instead of reconnecting
them; C<reconnect_delay> (doubling up to C<reconnect_delay_max>) is its
backoff after a connection could not be opened. The pool's:

=over 4

=item min (1)

Connections opened at once and kept open (reopened when lost).

=item max (10)

At most this many connections; acquires beyond wait for a release.

=item acquire_timeout (5 s)

An acquire (or C<with>, or a pool command) waiting longer fails with a
L<Future::IO::Redis::Error::Timeout> whose message describes the pool
("pool exhausted: 4 in use, 0 idle, max 4, 3 waiting"). 0: no limit.

=item idle_timeout (60 s)

Connections above C<min> unused this long are closed. 0: never.

=item max_age (none)

Connections older than this are closed at their release instead of reused.

=item health_check_after (30 s)

A connection idle this long is PINGed before it is lent; a dead one is
replaced without its user noticing.

=item cleanup_timeout, on_dirty

Accepted for the reference design's sake: what is done with a dirty
connection is aredis's choice (above), which needs no wait.

=back

=head1 METHODS

=head2 acquire

A future of a connection of your own (a L<Future::IO::Redis>). Fails with
a timeout after C<acquire_timeout>, or with the connection error when no
connection can be opened.

=head2 release($conn)

Give it back, in whatever state. A watch it holds is ended first, and its
subscription (if it subscribed) is closed: its C<next_message> gives undef
from then on. Releasing twice, or a connection of another pool, does
nothing.

=head2 with($code)

Acquire, call C<< $code->($conn) >>, and release when the future it
returns is ready (at once when it returns something else or dies). The
future is the code's result, or its failure.

=head2 command(@words), and every command as a method

One command on a connection the pool picks, without taking it from
anyone: commands issued together share a connection and leave in one
write. Commands that leave session state behind (MULTI, SELECT) are
pointless here: the pool resets it when they complete.

=head2 stats

A hash ref: C<active> (lent now), C<idle>, C<waiting>, C<total>,
C<destroyed> (connections closed by the pool: dirty, broken, too old, idle
too long) as the reference design names them, and aredis's
C<aredis_pool_stats> fields C<in_use>, C<opening>, C<checking>,
C<created>, C<discarded>, C<connect_failures>, C<acquires>, C<commands>,
C<timeouts>, C<resets> (dirty releases reset in place),
C<health_checks>, C<health_check_failures>.

=head2 min, max

The sizes given.

=head2 shutdown

Close every connection now. Waiting acquires fail; connections still out
become unusable (commands in flight on them fail). A future, done.

=cut
