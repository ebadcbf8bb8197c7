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

# ---- Errors -----------------------------------------------------------------

# aredis's typed errors to the reference design's classes.
my %CLASS = (
    AREDIS_ERR_SERVER        => 'Future::IO::Redis::Error::Redis',
    AREDIS_ERR_AUTH          => 'Future::IO::Redis::Error::Redis',
    AREDIS_ERR_TIMEOUT       => 'Future::IO::Redis::Error::Timeout',
    AREDIS_ERR_PROTOCOL      => 'Future::IO::Redis::Error::Protocol',
    AREDIS_ERR_TLS           => 'Future::IO::Redis::Error::Connection',
    AREDIS_ERR_NOT_CONNECTED => 'Future::IO::Redis::Error::Disconnected',
    AREDIS_ERR_CLOSED        => 'Future::IO::Redis::Error::Disconnected',
    AREDIS_ERR_CANCELLED     => 'Future::IO::Redis::Error::Disconnected',
);

sub _error {
    my ($code, $detail, $prefix, $is_conn, $reply) = @_;
    my $class = $CLASS{$code}
        // ($is_conn ? 'Future::IO::Redis::Error::Connection' : 'Future::IO::Redis::Error');
    if ($class eq 'Future::IO::Redis::Error::Redis') {
        my $msg = defined $reply ? $reply : $detail;
        my $e = Future::IO::Redis::Error::Redis->from_message($msg);
        $e->{code} = $code;
        $e->{type} = $prefix if defined $prefix && length $prefix;
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

# Called by the XS for an error reply inside an array (pipeline, EXEC).
sub _reply_error { Future::IO::Redis::Error::Redis->from_message($_[0]) }

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
    $o{connect_timeout_ms} = $ms->($args->{connect_timeout} // 10);
    $o{request_timeout_ms} = $ms->($args->{request_timeout} // 5);
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
    return \%o;
}

my %KNOWN = map { $_ => 1 } qw(
    host port path uri password username database tls connect_timeout read_timeout
    request_timeout reconnect reconnect_delay reconnect_delay_max max_reconnect_delay
    reconnect_jitter max_reconnect_attempts queue_during_reconnect max_queue_size queue_size
    on_connect on_disconnect on_error prefix client_name debug otel_tracer otel_meter protocol
    write_timeout blocking_timeout_buffer
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
    Future::IO::Redis::_XS::set_debug(1) if $args{debug};
    $self->{c} = Future::IO::Redis::_XS::client_new(_aredis_options(\%args), $self);
    return $self;
}

# ---- Events from aredis --------------------------------------------------------

sub _event {
    my ($self, $name, @err) = @_;
    if ($name eq 'connect') {
        $self->{connected} = 1;
        $self->{on_connect}->($self) if $self->{on_connect};
        my @w = splice @{ $self->{waiters} };
        $_->done($self) for grep { !$_->is_ready } @w;
    } elsif ($name eq 'disconnect') {
        $self->{connected} = 0;
        $self->{on_disconnect}->($self, _error(@err)->message) if $self->{on_disconnect};
    } elsif ($name eq 'error') {
        my $e = _error(@err);
        $self->{on_error}->($self, $e) if $self->{on_error};
        # A connect that failed, and the policy will not try again for the
        # waiters: fail them (with reconnect on they wait for a connect).
        if (!$self->{connected} && !$self->{args}{reconnect}) {
            my @w = splice @{ $self->{waiters} };
            $_->fail($e) for grep { !$_->is_ready } @w;
        }
    }
    return;
}

# ---- Methods --------------------------------------------------------------------

sub _new_future { Future::IO::Redis::Loop::new_future() }

sub connect {
    my ($self) = @_;
    Carp::croak('Future::IO::Redis needs a Future::IO implementation that can watch several '
            . 'handles (IO::Async, UV, Glib...): Future::IO->load_impl(...) first')
        unless Future::IO->HAVE_MULTIPLE_FILEHANDLES;
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

sub command {
    my ($self, @args) = @_;
    my $f = _new_future();
    my $ok = eval { Future::IO::Redis::_XS::command($self->{c}, $f, @args); 1 };
    return Future->fail($@) unless $ok;
    return $f;
}

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
    my $r = $code->($tx);
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
    if (my $c = delete $self->{c}) {
        # A client inherited across fork() is the parent's: aredis closes
        # its descriptor without a word on the wire.
        Future::IO::Redis::_XS::client_free($c);
    }
}

Future::IO::Redis::Commands->install(__PACKAGE__);

1;
