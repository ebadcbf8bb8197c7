package Future::IO::Redis;

use strict;
use warnings;
use 5.018;

our $VERSION = '0.001';

require XSLoader;
XSLoader::load('Future::IO::Redis', $VERSION);

use Carp ();
use Future;
use Future::IO;
use Scalar::Util ();

use Future::IO::Redis::Loop;
use Future::IO::Redis::Error;
use Future::IO::Redis::Error::Connection;
use Future::IO::Redis::Error::Timeout;
use Future::IO::Redis::Error::Protocol;
use Future::IO::Redis::Error::Redis;
use Future::IO::Redis::Error::Disconnected;
use Future::IO::Redis::Commands;
use Future::IO::Redis::Pipeline;
use Future::IO::Redis::Transaction;
use Future::IO::Redis::Script;
use Future::IO::Redis::Iterator;
use Future::IO::Redis::Watch;
use Future::IO::Redis::Subscription;

# ---- Errors -----------------------------------------------------------------

# aredis's typed errors to the reference design's classes.
my %CLASS = (
    AREDIS_ERR_SERVER        => 'Future::IO::Redis::Error::Redis',
    AREDIS_ERR_AUTH          => 'Future::IO::Redis::Error::Redis',
    AREDIS_ERR_HANDSHAKE     => 'Future::IO::Redis::Error::Redis',
    AREDIS_ERR_TIMEOUT       => 'Future::IO::Redis::Error::Timeout',
    AREDIS_ERR_PROTOCOL      => 'Future::IO::Redis::Error::Protocol',
    AREDIS_ERR_TLS           => 'Future::IO::Redis::Error::Connection',
    AREDIS_ERR_NOT_CONNECTED => 'Future::IO::Redis::Error::Disconnected',
    AREDIS_ERR_CLOSED        => 'Future::IO::Redis::Error::Disconnected',
    AREDIS_ERR_CANCELLED     => 'Future::IO::Redis::Error::Disconnected',
    AREDIS_ERR_FORKED        => 'Future::IO::Redis::Error::Disconnected',
);

sub _error {
    my ($code, $detail, $prefix, $is_conn, $reply) = @_;
    my $class = $CLASS{$code}
        // ($is_conn ? 'Future::IO::Redis::Error::Connection' : 'Future::IO::Redis::Error');
    # aredis's details name its C API where a Perl program has a method.
    $detail =~ s/aredis_client_connect\(\)/connect()/g if defined $detail;
    if ($class eq 'Future::IO::Redis::Error::Redis') {
        # aredis's detail is the server's text with any credential it
        # quotes back <redacted> (the raw reply may hold one).
        my $msg = defined $detail && length $detail ? $detail : $reply // '';
        my $e = Future::IO::Redis::Error::Redis->from_message($msg);
        $e->{code} = $code;
        $e->{type} = $prefix if defined $prefix && length $prefix;
        # A refused handshake ("HELLO refused: WRONGPASS ..."): the
        # server's word.
        $e->{type} = $1
            if $code ne 'AREDIS_ERR_SERVER' && $msg =~ /refused: ([A-Z][A-Z0-9_]*)\b/;
        return $e;
    }
    return $class->new(message => $detail, code => $code);
}

# Called by the XS: fail a command's future with the right class.
sub _fail {
    my ($f, @err) = @_;
    my $e = _error(@err);
    $f->fail($e) unless $f->is_ready;
}

# Called by the XS: a refusal at issue time dies with the error object.
sub _refused { die _error($_[0], $_[1], '', $_[2]) }

# A failed future for what a call died with: an error object as it is, a
# plain die (a croak of the XS) as a Future::IO::Redis::Error.
sub _failed {
    my ($e) = @_;
    if (!ref $e) {
        (my $m = $e) =~ s/ at \S+ line \d+\.?\n\z//;
        $e = Future::IO::Redis::Error->new(message => $m, code => 'AREDIS_ERR_INVALID');
    }
    return Future->fail($e);
}

# Called by the XS for an error reply inside an array (pipeline, EXEC).
sub _reply_error { Future::IO::Redis::Error::Redis->from_message($_[0]) }

# ---- Debug log ------------------------------------------------------------------

# debug => 1 or a code ref: aredis's log lines (DEBUG and up: every command
# as sent, credentials <redacted>; connects, losses, reconnects) for the
# whole process, from the last client made with it.
our $DEBUG;

# Called by the XS for each line.
sub _log {
    my ($level, $line) = @_;
    my $d = $DEBUG or return;
    if (ref $d eq 'CODE') { $d->(lc $level, $line) }
    else                  { warn "[REDIS $level] $line\n" }
    return;
}

# ---- Construction -------------------------------------------------------------

# The reference design's options and what aredis calls them.
sub _aredis_options {
    my ($args) = @_;
    my %o;
    if (defined $args->{uri}) {
        my $u = Future::IO::Redis::_XS::uri_parse($args->{uri});
        %o = %$u;
    }
    $o{host}     = $args->{host} if defined $args->{host};
    $o{port}     = $args->{port} if defined $args->{port};
    $o{unix_path} = $args->{path} if defined $args->{path};
    $o{host} //= 'localhost' unless defined $o{unix_path};
    $o{password} = $args->{password} if defined $args->{password};
    $o{username} = $args->{username} if defined $args->{username};
    $o{db} = $args->{database} if defined $args->{database};
    $o{client_name} = $args->{client_name} if defined $args->{client_name};
    $o{prefix} = $args->{prefix} if defined $args->{prefix} && length $args->{prefix};
    if (my $tls = $args->{tls}) {
        $o{tls} = 1;
        if (ref $tls eq 'HASH') {
            $o{tls_ca_file} = $tls->{ca_file} if defined $tls->{ca_file};
            $o{tls_ca_path} = $tls->{ca_path} if defined $tls->{ca_path};
            $o{tls_cert_file} = $tls->{cert_file} if defined $tls->{cert_file};
            $o{tls_key_file} = $tls->{key_file} if defined $tls->{key_file};
            $o{tls_server_name} = $tls->{server_name} if defined $tls->{server_name};
            $o{tls_insecure_skip_verify} = 1 if exists $tls->{verify} && !$tls->{verify};
        }
    }
    my $ms = sub { my $v = shift; defined $v ? int($v * 1000 + 0.5) : undef };
    # Given options win over the URI's query (?connect_timeout=, ?timeout=),
    # which wins over the defaults.
    $o{connect_timeout_ms} = $ms->($args->{connect_timeout})
        if defined $args->{connect_timeout} || !defined $o{connect_timeout_ms};
    $o{connect_timeout_ms} //= $ms->(10);
    $o{request_timeout_ms} = $ms->($args->{request_timeout} // 5)
        if defined $args->{request_timeout} || !defined $o{request_timeout_ms};
    $o{dead_timeout_ms} = $ms->($args->{read_timeout}) if defined $args->{read_timeout};
    $o{reconnect} = $args->{reconnect} ? 1 : 0;
    $o{reconnect_delay_ms} = $ms->($args->{reconnect_delay} // 0.1);
    my $max = $args->{reconnect_delay_max} // $args->{max_reconnect_delay} // 60;
    $o{max_reconnect_delay_ms} = $ms->($max);
    $o{reconnect_jitter} = $args->{reconnect_jitter} // 0.25;
    $o{max_reconnect_attempts} = $args->{max_reconnect_attempts}
        if defined $args->{max_reconnect_attempts};
    $o{queue_during_reconnect} = $args->{queue_during_reconnect} ? 1 : 0
        if exists $args->{queue_during_reconnect};
    $o{max_queue_size} = $args->{max_queue_size} // $args->{queue_size}
        if defined($args->{max_queue_size} // $args->{queue_size});
    $o{protocol} = $args->{protocol} if defined $args->{protocol};
    # A program started before its server keeps trying when it asked for
    # reconnection.
    $o{wait_for_first_connect} = 1 if $o{reconnect};
    # Fork safety as the reference design has it: a client inherited by a
    # forked child leaves the parent's connection alone and, when the child
    # uses it, connects anew.
    $o{reconnect_in_child} = 1;
    return \%o;
}

my %KNOWN = map { $_ => 1 } qw(
    host port path uri password username database tls connect_timeout read_timeout
    request_timeout reconnect reconnect_delay reconnect_delay_max max_reconnect_delay
    reconnect_jitter max_reconnect_attempts queue_during_reconnect max_queue_size queue_size
    on_connect on_disconnect on_error prefix client_name debug otel_tracer otel_meter protocol
    write_timeout blocking_timeout_buffer subscription_buffer
);

sub new {
    my ($class, %args) = @_;
    for my $k (keys %args) {
        Carp::croak("Future::IO::Redis->new: unknown option '$k'") unless $KNOWN{$k};
    }
    my $self = bless {
        args          => {%args},
        on_connect    => $args{on_connect},
        on_disconnect => $args{on_disconnect},
        on_error      => $args{on_error},
        prefix        => $args{prefix},
        debug         => $args{debug},
        otel_tracer   => $args{otel_tracer},
        otel_meter    => $args{otel_meter},
        connected     => 0,
        waiters       => [],
        pid           => $$,
    }, $class;
    if ($args{debug}) {
        $DEBUG = $args{debug};
        Future::IO::Redis::_XS::set_debug(1);
    }
    $self->{c} = Future::IO::Redis::_XS::client_new(_aredis_options(\%args), $self);
    return $self;
}

# ---- Events from aredis --------------------------------------------------------

# A program's callback: a death in it is reported and goes no further (the
# client's own bookkeeping around it must still run).
sub _call_back {
    my ($self, $name, @args) = @_;
    my $cb = $self->{$name} or return;
    eval { $cb->($self, @args); 1 } or warn "Future::IO::Redis: $name died: $@";
    return;
}

sub _event {
    my ($self, $name, $code, $detail, $is_conn) = @_;
    if ($name eq 'connect') {
        $self->{connected} = 1;
        my @w = splice @{ $self->{waiters} };
        $self->_call_back('on_connect');
        $_->done($self) for grep { !$_->is_ready } @w;
    } elsif ($name eq 'disconnect') {
        $self->{connected} = 0;
        $self->_call_back('on_disconnect', _error($code, $detail, '', $is_conn)->message);
    } elsif ($name eq 'error') {
        my $e = _error($code, $detail, '', $is_conn);
        # A connect attempt failed: connect() fails with its error, as one
        # attempt does in the reference design (with reconnect on, aredis
        # goes on trying in the background and commands wait for it).
        my @w = $self->{connected} ? () : splice @{ $self->{waiters} };
        $self->_call_back('on_error', $e);
        $_->fail($e) for grep { !$_->is_ready } @w;
    }
    return;
}

# ---- Methods --------------------------------------------------------------------

sub _new_future { Future::IO::Redis::Loop::new_future() }

sub connect {
    my ($self) = @_;
    Carp::croak('Future::IO::Redis needs a Future::IO implementation that can watch several '
            . 'handles (IO::Async, UV, Glib...): Future::IO->load_impl(...) first')
        unless Future::IO::Redis::Loop::have_impl();
    return Future->done($self) if $self->{connected} && $self->{c};
    $self->_reopen if !$self->{c};
    my $f = _new_future();
    push @{ $self->{waiters} }, $f;
    my $state = Future::IO::Redis::_XS::client_state($self->{c});
    if (lc $state eq 'idle') {
        my $ok = eval { Future::IO::Redis::_XS::client_connect($self->{c}); 1 };
        if (!$ok) {
            @{ $self->{waiters} } = grep { $_ != $f } @{ $self->{waiters} };
            return Future->fail($@);
        }
    }
    return $f;
}

sub _reopen {
    my ($self) = @_;
    $self->{c} = Future::IO::Redis::_XS::client_new(_aredis_options($self->{args}), $self);
}

sub disconnect {
    my ($self) = @_;
    return unless $self->{c};
    Future::IO::Redis::_XS::client_disconnect($self->{c});
    $self->{connected} = 0;
    return;
}

sub is_connected { $_[0]{connected} ? 1 : 0 }

# A method sending @words followed by its arguments: command() itself (no
# words), and every Redis command's method (installed below), one closure
# each so that a command costs no extra call. While watching, commands go
# through the WATCH's transaction (Watch.pm).
sub _direct {
    my @words = @_;
    return sub {
        my $self = shift;
        return $self->_watch_command(@words, @_) if $self->{watch};
        my $f = Future::IO::Redis::Loop::new_future();
        eval { Future::IO::Redis::_XS::command($self->{c}, $f, @words, @_); 1 }
            or return _failed($@);
        return $f;
    };
}

*command = _direct();

# RESP2 servers give HGETALL as a flat list: the reference design returns a
# hash either way.
sub hgetall {
    my ($self, @args) = @_;
    return $self->command('HGETALL', @args)->then(sub {
        my ($r) = @_;
        return Future->done(ref $r eq 'ARRAY' ? {@$r} : $r // {});
    });
}

sub pipeline { Future::IO::Redis::Pipeline->new(redis => $_[0]) }

# multi(async sub { my ($tx) = @_; $tx->set(...) }): the callback queues
# commands; they go out as MULTI ... EXEC in one write; the future is the
# list of their results (an array ref).
sub multi {
    my ($self, $code) = @_;
    my $tx = Future::IO::Redis::Transaction->new(redis => $self);
    return $tx unless $code;
    # A callback that dies fails the future (as an async sub would).
    my $r = eval { $code->($tx) };
    return Future->fail($@) if $@;
    my $ready = Scalar::Util::blessed($r) && $r->isa('Future') ? $r : Future->done;
    return $ready->then(sub { $tx->exec });
}

sub script {
    my ($self, $code) = @_;
    return Future::IO::Redis::Script->new(redis => $self, code => $code);
}

sub scan_iter  { my $s = shift; Future::IO::Redis::Iterator->new(redis => $s, command => 'SCAN', @_) }
sub hscan_iter { my $s = shift; my $k = shift; Future::IO::Redis::Iterator->new(redis => $s, command => 'HSCAN', key => $k, @_) }
sub sscan_iter { my $s = shift; my $k = shift; Future::IO::Redis::Iterator->new(redis => $s, command => 'SSCAN', key => $k, @_) }
sub zscan_iter { my $s = shift; my $k = shift; Future::IO::Redis::Iterator->new(redis => $s, command => 'ZSCAN', key => $k, @_) }

sub stats { Future::IO::Redis::_XS::client_stats($_[0]{c}) }

sub DESTROY {
    my ($self) = @_;
    return if ${^GLOBAL_PHASE} eq 'DESTRUCT' && !$self->{c};
    # A transaction (WATCH) is freed before its client.
    $self->_watch_end if $self->{watch};
    if (my $c = delete $self->{c}) {
        # A client inherited across fork() is the parent's: aredis closes
        # its descriptor without a word on the wire.
        Future::IO::Redis::_XS::client_free($c);
    }
}

# Every Redis command as a method: command()'s closure with the command's
# words, not a call through command() (1-2 thousand instructions a command).
Future::IO::Redis::Commands->install(__PACKAGE__, \&_direct);

# The pipelines' command methods are XSUBs: made now the XS is loaded.
Future::IO::Redis::Pipeline::_install();

# From here on Perl tears down: clients freed later close their sockets
# without calling back into the loop's Perl side.
END { Future::IO::Redis::_XS::global_end() }

1;

__END__

=head1 NAME

Future::IO::Redis - an asynchronous Redis client for Future::IO, on aredis

=head1 SYNOPSIS

    use Future::IO::Redis;
    use Future::AsyncAwait;

    # Use any Future::IO-compatible event loop
    # IO::Async:
    use IO::Async::Loop;
    use Future::IO;
    Future::IO->load_impl('IOAsync');
    my $loop = IO::Async::Loop->new;

    # Or UV:   Future::IO->load_impl('UV');
    # Or Glib: Future::IO->load_impl('Glib');

    my $redis = Future::IO::Redis->new(
        host => 'localhost',
        port => 6379,
    );

    (async sub {
        await $redis->connect;

        # Simple commands
        await $redis->set('key', 'value');
        my $value = await $redis->get('key');

        # Pipelining for efficiency
        my $pipeline = $redis->pipeline;
        $pipeline->set('k1', 'v1');
        $pipeline->set('k2', 'v2');
        $pipeline->get('k1');
        my $results = await $pipeline->execute;

        # PubSub
        my $sub = await $redis->subscribe('channel');
        while (my $msg = await $sub->next_message) {
            print "Received: $msg->{message}\n";
        }
    })->()->retain;

    $loop->run;

This is the synopsis of the reference design (L</DESCRIPTION>) with this
package's name, and C<< ->retain >> on the future of the C<async sub>: with
L<Future::AsyncAwait> an C<async sub> that is waiting and whose future
nobody holds is abandoned ("lost its returning future"), whatever client it
waits on. F<t/05-reference-examples.t> runs it, and every example of the
reference design's documentation.

=head1 DESCRIPTION

Future::IO::Redis gives Perl programs on L<Future::IO> the API of the Perl
module Async::Redis (also published as Future::IO::Redis; "the reference
design" below): C<< Future::IO::Redis->new(%options) >>, C<connect>, a
method returning a L<Future> for every Redis command, pipelines,
transactions, C<WATCH>, Lua scripts, C<SCAN> iterators, pub/sub, a pool,
typed errors, reconnection and fork safety. Its options, methods, replies
and error classes are the reference design's; this page says where they
differ.

Underneath is aredis, an asynchronous Redis client written in C: the
protocol (RESP2 and RESP3), the connection and its handshake, timeouts,
reconnection with backoff, the queue of commands, key prefixes, pipelines,
transactions and subscriptions are aredis's. The binding runs aredis on the
program's event loop through Future::IO (L</EVENT LOOP>): no thread, no
loop of its own.

Key features (those of the reference design):

=over 4

=item * async/await with L<Future::AsyncAwait>; or plain futures

=item * any event loop Future::IO has an implementation for (IO::Async, UV, Glib...)

=item * automatic reconnection with exponential backoff and jitter

=item * pipelines, transactions (MULTI/EXEC/WATCH), Lua scripts (EVALSHA with EVAL fallback)

=item * pub/sub that subscribes again after a reconnect

=item * a connection pool (L<Future::IO::Redis::Pool>)

=item * TLS, ACL users, a key prefix per client

=item * fork safe for pre-forking servers

=back

=head1 CONSTRUCTOR

=head2 new

    my $redis = Future::IO::Redis->new(%options);

Makes a client; does not connect (see L</connect>). An option this page
does not name, a C<uri> that does not parse, or options aredis refuses (a
port out of range, a negative database, a C<client_name> with a space, a
C<username> without a C<password>, a prefix over 1024 bytes) make C<new>
die with the reason.

Every option, its default, what it means and the aredis option
(C<aredis_options> in F<include/aredis/client.h>) it becomes:

=over 4

=item host => $hostname

The server: a name, an IPv4 or an IPv6 literal. Default: C<'localhost'>.
aredis: C<host>. A name is resolved at every connect and reconnect on a
short-lived thread, never blocking the event loop, within
C<connect_timeout>.

=item port => $port

The TCP port. Default: 6379. aredis: C<port>.

=item path => $socket_path

A unix socket instead of TCP (C<host> and C<port> are then not used). No
default. aredis: C<unix_path>. Not in the reference design's
documentation; its URI parser gives the same for C<redis+unix://>.

=item uri => $uri

The server and credentials as one string, parsed by aredis
(C<aredis_uri_parse>):

    redis://[user[:password]@]host[:port][/db][?key=value&...]
    rediss://...                                  (TLS)
    unix:///path/to/socket[?...]   redis+unix:///path/to/socket[?...]

The query may set C<db>, C<protocol>, C<client_name> (or C<name>),
C<connect_timeout> and C<timeout> (the request timeout), in seconds,
C<password> and C<username>. User and password may be percent-encoded.
Options given to C<new> as well win over the URI's (as the reference
implementation does; its POD says the other way round). A URI that does
not parse makes C<new> die with a message that never quotes the password.

=item password => $password

Authentication: sent in the handshake (C<HELLO 3 AUTH> or C<AUTH>), again
after every reconnect. aredis: C<password>. Never written to a log or an
error message (L</OBSERVABILITY>). A refused password fails C<connect> with
a L<Future::IO::Redis::Error::Redis> whose C<type> is C<WRONGPASS> (or
C<NOAUTH> when none was given to a server that needs one).

=item username => $username

The ACL user (Redis 6+), with C<password>. aredis: C<username>.

=item database => $db

The database to C<SELECT> in the handshake (and after every reconnect).
Default: 0. aredis: C<db>. A database the server does not have fails
C<connect> with a L<Future::IO::Redis::Error::Redis>.

=item tls => $bool | \%options

TLS. aredis: C<tls = 1> and, from the hash: C<ca_file> (C<tls_ca_file>),
C<ca_path> (C<tls_ca_path>), C<cert_file> and C<key_file> (C<tls_cert_file>,
C<tls_key_file>: a client certificate), C<server_name> (C<tls_server_name>:
the name sent and verified; default C<host>), C<< verify => 0 >>
(C<tls_insecure_skip_verify>: B<no verification at all>, for throwaway test
setups only). The server's certificate chain and name are verified by
default, against the system's CA store when no C<ca_file>/C<ca_path> is
given.

=item connect_timeout => $seconds

How long a connect may take: name resolution, TCP connect, TLS and the
Redis handshake together. Default: 10. aredis: C<connect_timeout_ms>. When
it expires C<connect> fails with a L<Future::IO::Redis::Error::Timeout>.

=item read_timeout => $seconds

aredis: C<dead_timeout_ms> (default there: 10 s). The reference design
reads with a timeout; aredis bounds every command with C<request_timeout>
instead, and uses this one for a link that went silent: after a command
timed out while its bytes were on the wire, if nothing at all arrives from
the server for this long, the connection is declared dead, closed (and
reconnected if C<reconnect>). 0: never.

=item write_timeout => $seconds

Accepted, without effect: writes never block, and a command that cannot be
written in time fails at its C<request_timeout>.

=item request_timeout => $seconds

Per command, from the moment it is issued (time spent waiting for a
connection counts): a command without its reply by then fails with a
L<Future::IO::Redis::Error::Timeout>. Default: 5. aredis:
C<request_timeout_ms>; 0: none. Blocking commands (BLPOP, BRPOP, BLMOVE,
BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP, XREAD/XREADGROUP BLOCK,
WAIT, WAITAOF) get their own block time on top, and no deadline when they
block for ever. The connection is kept: a late reply is recognised and
dropped, and the next command gets its own reply.

=item blocking_timeout_buffer => $seconds

Accepted, without effect: aredis gives a blocking command its block time
plus C<request_timeout> (the reference design: plus this buffer, default 2).

=item reconnect => $bool

Default: 0. aredis: C<reconnect>. With 1, a lost connection (or a failed
connect) is retried with exponential backoff; the handshake (password,
database, client name) is redone; commands issued while disconnected wait
for the connection (C<queue_during_reconnect>), each within its
C<request_timeout>; a command whose bytes were already sent when the
connection dropped fails once with a L<Future::IO::Redis::Error::Connection>
(it may have run: it is never sent twice). Commands issued before the
first connect succeeds wait too (aredis: C<wait_for_first_connect>), so a
program may start before its server; C<connect> itself still fails with
the first attempt's error, as in the reference design. With 0, a lost
connection fails what is in flight, later commands fail at once with a
L<Future::IO::Redis::Error::Disconnected>, and C<connect> may be called
again.

=item reconnect_delay => $seconds

The first delay before reconnecting; it doubles after each failed attempt.
Default: 0.1. aredis: C<reconnect_delay_ms>.

=item reconnect_delay_max => $seconds

The cap on that delay (C<max_reconnect_delay> is taken too). Default: 60.
aredis: C<max_reconnect_delay_ms>.

=item reconnect_jitter => $ratio

Each delay is multiplied by a random factor in [1 - ratio, 1 + ratio].
Default: 0.25. aredis: C<reconnect_jitter>.

=item max_reconnect_attempts => $n

Not in the reference design. Give up after this many failed attempts in a
row: what waits then fails, and C<on_error> says "gave up". Default: 0,
unlimited. aredis: C<max_reconnect_attempts>.

=item queue_during_reconnect => $bool

Not in the reference design. With C<reconnect>, whether commands issued
while disconnected wait for the reconnect (1, the default) or fail at once
with a L<Future::IO::Redis::Error::Disconnected> (0). aredis:
C<queue_during_reconnect>.

=item max_queue_size => $n

Not in the reference design (C<queue_size> is taken too). At most this many
commands held at once (waiting, in flight, timed out but still owed a
reply); one more fails at once with a L<Future::IO::Redis::Error> of code
C<AREDIS_ERR_QUEUE_FULL>. Default: 0, unbounded (bounded in time by
C<request_timeout>). aredis: C<max_queue_size>.

=item protocol => 2 | 3

Not in the reference design. 3 (the default, aredis's): C<HELLO 3>,
falling back to RESP2 on a server without it; 2: RESP2 only, as the
reference design speaks. aredis: C<protocol>. Most replies are the same
either way; those that differ are in L</REPLIES>.

=item on_connect => $coderef

C<< $coderef->($redis) >> after every successful connect and handshake, the
first and every reconnect. aredis: C<on_connect>.

=item on_disconnect => $coderef

C<< $coderef->($redis, $reason) >> when an established connection ends:
C<disconnect>, the server closing it, a reset. C<$reason> is a message.
aredis: C<on_disconnect>.

=item on_error => $coderef

C<< $coderef->($redis, $error) >> for each connection-level error: a
connect attempt that failed, a connection lost, the reconnect policy giving
up, a client adopted by a forked child. C<$error> is an error object
(L</ERROR HANDLING>). Informational: each affected command fails with its
own error. aredis: C<on_error>.

A callback that dies does not disturb the client: the death is reported
with C<warn>.

=item prefix => $prefix

A key prefix (C<'app:'>): every B<key> of every command gets it, values
never. aredis: C<prefix> (F<docs/PREFIX.md>): which arguments are keys
comes from the command table (Redis 7.0); SCAN and KEYS patterns get it
too and their replies come back without it, so the program sees the names
it used; a script's C<KEYS> get it, its C<ARGV> not. A command whose keys
aredis cannot find for sure (a module's, one newer than its table) is not
sent: it fails with a L<Future::IO::Redis::Error> of code
C<AREDIS_ERR_UNSUPPORTED>. At most 1024 bytes.

=item client_name => $name

C<CLIENT SETNAME> in the handshake, again after every reconnect. aredis:
C<client_name>: printable ASCII without spaces (C<new> dies otherwise).

=item debug => $bool | $coderef

aredis's log: every command as sent (secrets C<< <redacted> >>), connects,
losses, reconnects. See L</OBSERVABILITY>.

=item otel_tracer => $tracer, otel_meter => $meter

Accepted and kept; not used today. See L</OBSERVABILITY>.

=item subscription_buffer => $n

Not in the reference design: how many pub/sub messages a subscription
holds for the program before it drops (L<Future::IO::Redis::Subscription>).

=back

=head1 METHODS

Every method that talks to the server returns a L<Future> of the
implementation in use (so C<< ->get >> runs its loop). A failure fails the
future with an error object (L</ERROR HANDLING>); C<await> then dies with
it.

=head2 connect

    await $redis->connect;

Connect and do the handshake. Resolves with the client itself; on a client
already connected at once. Fails with the attempt's error (a
L<Future::IO::Redis::Error::Connection> for a refused connection, a
C<...::Timeout>, a C<...::Redis> for refused credentials). Dies at once
(not a failed future) when no Future::IO implementation that can watch
several handles is loaded (L</EVENT LOOP>). May be called again after
C<disconnect> or after a connection was lost without C<reconnect>.

=head2 disconnect

    $redis->disconnect;

Graceful: nothing new is sent, the commands already issued get their
replies, then the connection closes and C<on_disconnect> runs. Commands
issued afterwards fail with a L<Future::IO::Redis::Error::Disconnected>
until C<connect> is called again. Returns nothing.

=head2 is_connected

True while the connection is up (between C<on_connect> and
C<on_disconnect>).

=head2 command

    my $result = await $redis->command('GET', 'key');

Any command, as its words and arguments. Arguments are bytes: a string with
characters above 0xFF must be encoded first (C<Encode::encode('UTF-8',
$s)>); such a string, or an C<undef>, fails the future with a
L<Future::IO::Redis::Error> of code C<AREDIS_ERR_INVALID> and nothing is
sent. Commands whose replies cannot be matched one to one are refused the
same way (code C<AREDIS_ERR_UNSUPPORTED>): the subscribe family (use
L</subscribe>), C<MONITOR>, C<SYNC>, C<RESET>, C<CLIENT REPLY OFF>; C<WATCH>
and C<UNWATCH> have their own methods.

=head2 Redis Commands

Every Redis command is a method (generated from aredis's command table,
L<Future::IO::Redis::Commands>): the arguments follow the command's words,
and subcommands join with an underscore (C<client_setname>,
C<config_get>, C<object_encoding>):

    # Strings
    await $redis->set('key', 'value');
    my $value = await $redis->get('key');
    await $redis->incr('counter');
    await $redis->mset('k1', 'v1', 'k2', 'v2');
    my $values = await $redis->mget('k1', 'k2');

    # Hashes
    await $redis->hset('hash', 'field', 'value');
    my $value = await $redis->hget('hash', 'field');
    my $all = await $redis->hgetall('hash');       # a hash ref

    # Lists
    await $redis->lpush('list', 'value');
    my $value = await $redis->rpop('list');
    my $items = await $redis->lrange('list', 0, -1);

    # Sets
    await $redis->sadd('set', 'member');
    my $members = await $redis->smembers('set');

    # Sorted Sets
    await $redis->zadd('zset', 1, 'member');
    my $range = await $redis->zrange('zset', 0, -1);

    # Keys
    my $exists = await $redis->exists('key');
    await $redis->expire('key', 300);
    await $redis->del('key1', 'key2');

See L<https://redis.io/commands> for each command. C<hgetall> always
resolves with a hash ref (an empty one for a missing key).

=head2 pipeline

    my $pipeline = $redis->pipeline;
    $pipeline->set('k1', 'v1');
    $pipeline->incr('counter');
    my $results = await $pipeline->execute;     # ['OK', 1]

A L<Future::IO::Redis::Pipeline>: commands queued (each returns the
pipeline, so calls chain), sent in one write by C<execute>, whose future is
an array ref of the replies in order. A command the server refused has a
L<Future::IO::Redis::Error::Redis> object in its slot, and the others their
results; a lost connection fails the whole. An empty pipeline resolves with
C<[]> and sends nothing.

=head2 multi

    my $results = await $redis->multi(async sub {
        my ($tx) = @_;
        $tx->set('k1', 'v1');
        $tx->incr('counter');
    });

A transaction: the code gets a L<Future::IO::Redis::Transaction> and queues
commands on it (it may C<await> other things first); then C<MULTI>, the
commands and C<EXEC> go out together, with nothing of the client's other
commands between them. The future is C<EXEC>'s array ref of results: a
command that failed when C<EXEC> ran has a
L<Future::IO::Redis::Error::Redis> in its slot (Redis does not roll back).
A command the server refused while queueing (a wrong number of arguments)
makes the whole fail with a L<Future::IO::Redis::Error::Redis> of type
C<EXECABORT>, and nothing is applied. No command queued: C<[]>, nothing
sent. Code that dies (or whose future fails): the future fails with that
error and nothing is sent. Without code, C<multi> returns the transaction
object (queue commands, then C<< $tx->exec >>).

=head2 watch

    await $redis->watch('key1', 'key2');

C<WATCH> for a transaction: a following C<multi> runs only if no watched
key changed meanwhile (its future is then C<undef>). See
L<Future::IO::Redis::Watch>.

=head2 watch_multi

    my $results = await $redis->watch_multi(['key'], async sub {
        my ($tx, $values) = @_;
        $tx->set('key', $values->{key} + 1);
    });

Watch the keys, read their values, call the code with a transaction and a
hash ref of the values, and execute it: the results, or C<undef> when a
watched key was modified by another client (read again and retry).

=head2 unwatch

    await $redis->unwatch;

Give up a C<watch>.

=head2 script

    my $script = $redis->script('return redis.call("get", KEYS[1])');
    my $result = await $script->run(['mykey']);

A L<Future::IO::Redis::Script>: run by its SHA1 (C<EVALSHA>); when the
server does not have it (a restart, C<SCRIPT FLUSH>: C<NOSCRIPT>) it is
sent once with C<EVAL>, and the caller sees only the result. Also
C<< $script->call(@args) >> (no keys) and C<< $script->call_with_keys($n,
@keys, @args) >>. A Lua error fails the future with a
L<Future::IO::Redis::Error::Redis>.

=head2 scan_iter

    my $iter = $redis->scan_iter(match => 'user:*', count => 100);
    while (my $keys = await $iter->next) {
        for my $key (@$keys) { ... }
    }

A L<Future::IO::Redis::Iterator> over C<SCAN> (options C<match>, C<count>,
C<type>): each C<next> resolves with a batch (an array ref, possibly empty
while the walk goes on) and with C<undef> at the end. Also
C<< hscan_iter($key, %options) >> and C<zscan_iter> (batches of
field/member, value/score pairs, flat) and C<sscan_iter>.

=head2 subscribe

    my $sub = await $redis->subscribe('channel1', 'channel2');

Subscribe to channels. Resolves with the client's
L<Future::IO::Redis::Subscription> (C<next_message>, C<on_message>, ...),
which subscribes again after a reconnect.

=head2 psubscribe

    my $sub = await $redis->psubscribe('chan:*');

Subscribe to patterns: the same Subscription object.

=head2 ssubscribe

    my $sub = await $redis->ssubscribe('orders');

Shard channels (Redis 7). Not in the reference design.

=head2 stats

    my $s = $redis->stats;

Counters since the client was made (aredis's C<aredis_client_stats>):
C<commands>, C<replies>, C<timeouts>, C<connects>, C<write_calls>,
C<read_calls>, C<bytes_in>, C<bytes_out>, and C<pending> (commands issued
and not yet completed).

=head1 REPLIES

=over 4

=item * strings and status replies: Perl strings of bytes (never decoded)

=item * integers: numbers; nil: C<undef>

=item * arrays and sets: array refs, nested as the reply is

=item * maps (RESP3): hash refs

=item * doubles (RESP3): numbers; booleans (RESP3): 1 or 0; big numbers: strings

=item * an error inside an array (a pipeline's, C<EXEC>'s): a L<Future::IO::Redis::Error::Redis> object in its place

=back

The reference design speaks RESP2. With the default C<< protocol => 3 >>
some replies have RESP3's shape: C<ZRANGE ... WITHSCORES> and
C<ZRANDMEMBER>/C<ZPOPMIN>/C<ZPOPMAX> with counts are lists of C<[member,
score]> pairs (RESP2: one flat list), C<ZSCORE>/C<ZINCRBY> give numbers
(RESP2: strings; both print alike), C<CONFIG GET>, C<HGETALL> inside a
pipeline or a transaction, C<XINFO>, C<XREAD> give hash refs (RESP2: flat
lists). C<< protocol => 2 >> gives exactly the reference design's shapes.

=head1 EVENT LOOP

aredis asks its event loop to watch descriptors, arm timers and run
deferred work; here each of these is a L<Future::IO> wait
(C<ready_for_read>, C<ready_for_write>, C<sleep>), so the client runs on
whatever loop the program's Future::IO implementation drives, and its
futures are that implementation's (their C<get> and C<await> run it). One
such loop serves every client of the process. No thread runs the client
(a host name is resolved on a short-lived thread that only wakes the loop).

The implementation must be able to watch several handles at once: its
C<HAVE_MULTIPLE_FILEHANDLES> is true. L<Future::IO::Impl::IOAsync>
(IO::Async, with any of its loops: Epoll, Poll, Select...), the UV and Glib
implementations are. Load it before C<connect>:

    use Future::IO;
    Future::IO->load_impl('IOAsync');    # or use Future::IO::Impl::IOAsync;

Without one, C<connect> dies with "Future::IO::Redis needs a Future::IO
implementation that can watch several handles". Future::IO before 0.17 has
no C<load_impl>; Future::IO::Redis then provides one that does the same.

The binding never relies on cancelling a readiness wait (some
implementations, IO::Async's among them, leave a cancelled wait
registered): each descriptor has at most one wait per direction, and a
descriptor aredis has closed is released only once its waits have ended.
F<t/02-any-loop.t> runs the client on IO::Async's Epoll, Poll and Select
loops and on a minimal implementation written on select(2).

=head1 ERROR HANDLING

Errors are objects, thrown by C<await> (or C<get>) on the failed future and
handed to C<on_error>. They stringify to their message; C<code> is
aredis's error name.

    use Try::Tiny;

    try {
        $redis->get('key')->get;       # or: await, in an async sub
    } catch {
        if ($_->isa('Future::IO::Redis::Error::Connection')) {
            # Connection error
        } elsif ($_->isa('Future::IO::Redis::Error::Timeout')) {
            # Timeout error
        } elsif ($_->isa('Future::IO::Redis::Error::Redis')) {
            # Redis error (e.g., WRONGTYPE)
        }
    };

The classes, and the aredis errors (F<docs/ERRORS.md>) each stands for:

=over 4

=item L<Future::IO::Redis::Error::Connection>

The connection failed: refused (C<AREDIS_ERR_CONNREFUSED>), reset or failed
I/O (C<AREDIS_ERR_IO>), closed by the server (C<AREDIS_ERR_EOF>), a name
that does not resolve (C<AREDIS_ERR_RESOLVE>), TLS (C<AREDIS_ERR_TLS>). A
command in flight when the connection dropped fails with this.

=item L<Future::IO::Redis::Error::Timeout>

C<connect_timeout> or C<request_timeout> expired (C<AREDIS_ERR_TIMEOUT>).
The command may still run on the server.

=item L<Future::IO::Redis::Error::Protocol>

The server sent bytes that are not RESP, or more than a reply owed
(C<AREDIS_ERR_PROTOCOL>); the connection is closed.

=item L<Future::IO::Redis::Error::Redis>

The server answered with an error (C<AREDIS_ERR_SERVER>): C<type> is its
first word (C<WRONGTYPE>, C<ERR>, C<NOSCRIPT>, C<EXECABORT>...), C<message>
its text with any credential it quotes back C<< <redacted> >>. Also the
handshake refused: credentials (C<AREDIS_ERR_AUTH>: C<type> C<WRONGPASS>,
C<NOAUTH>, C<NOPERM>) or another step, such as C<SELECT> of a database the
server lacks (C<AREDIS_ERR_HANDSHAKE>).

=item L<Future::IO::Redis::Error::Disconnected>

The client is not connected: never connected or disconnected
(C<AREDIS_ERR_NOT_CONNECTED>), disconnecting (C<AREDIS_ERR_CLOSED>), the
command cancelled by the client going away (C<AREDIS_ERR_CANCELLED>), a
command of the parent's pending in a forked child (C<AREDIS_ERR_FORKED>).

=item L<Future::IO::Redis::Error> itself

What the program asked for is refused before anything is sent: a bad
argument (C<AREDIS_ERR_INVALID>: C<undef>, wide characters, an empty
command), a command the client does not send (C<AREDIS_ERR_UNSUPPORTED>),
the queue full (C<AREDIS_ERR_QUEUE_FULL>), out of memory.

=back

=head1 FORK SAFETY

A client inherited by a forked child (a pre-forking server: Starman and
the like) never writes to the parent's connection. On its first use in the
child it drops the inherited connection, sending nothing, and connects
anew (aredis: C<reconnect_in_child>); C<on_error> reports it, and a command
the parent had pending fails in the child with a
L<Future::IO::Redis::Error::Disconnected>. A child may as well make clients
of its own. A child that ends, by C<exit> or otherwise, sends nothing on
the parent's connection, and the parent's client goes on as before
(F<t/95-fork.t>). The child holds a copy of the parent's socket until its
own wait on it ends or the child exits: the server sees the parent's
connection close only once both have closed it.

=head1 OBSERVABILITY

C<< debug => 1 >> turns on aredis's log (F<docs/LOGGING.md>), at its DEBUG
level: every command as it is sent, the handshake's included, connects,
failed attempts, losses, reconnects scheduled. Each line is given to
C<warn> as C<[REDIS DEBUG] 127.0.0.1:6379 command: SET k v> (so
C<$SIG{__WARN__}> sees them); with C<< debug => sub { my ($level, $line) =
@_; ... } >> the code gets them instead (C<$level>: C<debug>, C<info>,
C<warn>). Credentials never appear: passwords, C<AUTH> and C<HELLO>
arguments, C<CONFIG SET requirepass> values, C<ACL SETUSER> passwords and
URI passwords are C<< <redacted> >>, in the log and in error messages
(F<t/94-debug.t>). The log is aredis's and so the process's: the last
client made with C<debug> decides where lines go, for every client.

C<stats> gives counters (L</stats>).

C<otel_tracer> and C<otel_meter> are accepted, as the reference design
accepts them, and kept in the object; the binding does not call them: no
spans and no metrics are produced today. (aredis has an observation API of
its own, F<docs/OBSERVABILITY.md>, not yet wired to them.)

=head1 SEE ALSO

=over 4

=item * L<Future::IO> - the I/O abstraction the client waits with

=item * L<Future::AsyncAwait> - async/await

=item * L<Future::IO::Redis::Pool> - a connection pool

=item * L<Future::IO::Redis::Subscription> - pub/sub

=item * L<Future::IO::Redis::Pipeline>, L<Future::IO::Redis::Transaction>, L<Future::IO::Redis::Watch>, L<Future::IO::Redis::Script>, L<Future::IO::Redis::Iterator>

=item * L<Future::IO::Redis::Error> - the error classes

=item * aredis's documentation: F<docs/CLIENT.md>, F<docs/RESILIENCE.md>, F<docs/PREFIX.md>, F<docs/ERRORS.md>, F<docs/LOGGING.md> in its source tree

=item * L<Redis> - a synchronous client; L<Net::Async::Redis> - another asynchronous one

=back

=cut
