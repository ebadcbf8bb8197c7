package FIORTest;

# Test support for Future::IO::Redis's t/ suite: a throwaway redis-server
# (TCP on a free loopback port, and a unix socket, in a temp dir), stopped
# when the test ends; kill/restart for fault tests; run { } to wait for a
# future with a bound. Skips the test (with the reason) when redis-server is
# missing, and fails instead when CI is set.

use strict;
use warnings;

use Exporter 'import';
our @EXPORT = qw(start_server run wait_until free_port silent_listener elapsed);

use File::Temp ();
use IO::Socket::INET;
use Test2::API qw(context);
use Time::HiRes ();
use IO::Async::Loop;
use Future::IO;
use Future::IO::Impl::IOAsync;

our $LOOP = IO::Async::Loop->new;

sub _skip_all {
    my ($why) = @_;
    if ($ENV{CI}) {
        my $ctx = context();
        $ctx->fail_and_release("needed: $why");
        exit 1;
    }
    my $ctx = context();
    $ctx->plan(0, SKIP => $why);
    $ctx->release;
    exit 0;
}

# A loopback port nothing listens on (a connect there is refused).
sub free_port { _free_port() }

# A loopback listener that never accepts nor answers: TCP connects complete
# (the kernel's backlog) and the Redis handshake waits for ever. Returns the
# socket (keep it) and its port.
sub silent_listener {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 8)
        or die "listen: $!";
    return ($s, $s->sockport);
}

# elapsed { code } — (seconds taken, the code's result or undef, $@).
sub elapsed(&) {
    my ($code) = @_;
    my $t = Time::HiRes::time();
    my $r = eval { $code->() };
    my $err = $@;
    return (Time::HiRes::time() - $t, $r, $err);
}

sub _free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1)
        or die "no free port: $!";
    my $p = $s->sockport;
    close $s;
    return $p;
}

# start_server(%opts): extra => [redis-server arguments], port => a given
# port (else a free one). Returns an object
# with port, sock, url, unix_url, dir, stop, kill, restart.
sub start_server {
    my (%o) = @_;
    my $bin = $ENV{REDIS_SERVER} // 'redis-server';
    chomp(my $path = `command -v $bin 2>/dev/null`);
    _skip_all("$bin is not installed (scripts/deps.sh installs it)") unless $path;
    my $self = bless { dir => File::Temp::tempdir('fior-XXXXXX', TMPDIR => 1, CLEANUP => 1),
        extra => $o{extra} // [], bin => $path, owner => $$ }, __PACKAGE__;
    $self->{sock} = "$self->{dir}/redis.sock";
    $self->_spawn($o{port});
    return $self;
}

sub _spawn {
    my ($self, $port) = @_;
    for my $try (1 .. 5) {
        my $p = $port // _free_port();
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            open STDOUT, '>', "$self->{dir}/redis.log";
            open STDERR, '>&', \*STDOUT;
            exec $self->{bin}, '--port', $p, '--bind', '127.0.0.1', '--unixsocket', $self->{sock},
                '--dir', $self->{dir}, '--save', '', '--appendonly', 'no',
                '--enable-debug-command', 'local', @{ $self->{extra} };
            exit 127;
        }
        my $deadline = Time::HiRes::time() + 10;
        while (Time::HiRes::time() < $deadline) {
            last if waitpid($pid, 1) == $pid;
            if (my $c = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$p", Timeout => 1)) {
                print $c "PING\r\n";
                my $l = <$c> // '';
                if ($l =~ /^\+PONG|^-NOAUTH/) {
                    @$self{qw(pid port)} = ($pid, $p);
                    return;
                }
            }
            Time::HiRes::sleep(0.02);
        }
        kill 'KILL', $pid;
        waitpid $pid, 0;
        last if defined $port;
    }
    die "redis-server did not start: " . do { local (@ARGV, $/) = "$self->{dir}/redis.log"; <> };
}

sub port     { $_[0]{port} }
sub sock     { $_[0]{sock} }
sub dir      { $_[0]{dir} }
sub url      { "redis://127.0.0.1:$_[0]{port}" }
sub unix_url { "unix://$_[0]{sock}" }

sub kill {
    my ($self) = @_;
    return unless $self->{pid};
    kill 'KILL', $self->{pid};
    waitpid $self->{pid}, 0;
    delete $self->{pid};
}
sub stop { $_[0]->kill }
# The same port again.
sub restart { my ($self) = @_; $self->kill; unlink $self->{sock}; $self->_spawn($self->{port}) }

# Only the process that started it stops it (not a forked child).
sub DESTROY { local $?; $_[0]->kill if $_[0]{owner} == $$ }

# run { future } — wait for it (at most $secs, default 10) and return its
# result; a failure dies with the error, a timeout dies "timed out".
sub run(&;$) {
    my ($code, $secs) = @_;
    my $f = $code->();
    return $f unless ref $f && eval { $f->isa('Future') };
    my $t = $LOOP->delay_future(after => $secs // 10);
    Future->wait_any($f, $t)->await;
    die "timed out\n" unless $f->is_ready;
    return $f->get;
}

# wait_until { condition } $secs — run the loop until it holds; returns it.
sub wait_until(&;$) {
    my ($cond, $secs) = @_;
    my $deadline = Time::HiRes::time() + ($secs // 10);
    while (!$cond->()) {
        return 0 if Time::HiRes::time() > $deadline;
        $LOOP->loop_once(0.01);
    }
    return 1;
}

1;
