#!/usr/bin/perl
# bench/perl/bench.pl — Future::IO::Redis (aredis's Perl binding) against the
# Perl Redis clients people use, in one run: Redis::Fast (XS over hiredis)
# and Redis.pm (pure Perl). The shapes are the reference design's
# (sequential, parallel, pipelined SET/GET of a small value); see README.md.
#
#   perl bench/perl/bench.pl [--quick] [-n N] [-r ROUNDS] [-c C] [-P P]
#        [--clients fior,fast,redispm,raw,c] [--shapes seq,par,pipe]
#        [--ops set,get] [--host H --port P] [--unix [PATH]] [--blib DIR]
#        [--alt DIR [--alt-name NAME]]... [--compare PATH] [--no-pin] [--out FILE]
#
# Every client runs in its own forked process per round (the modules are
# loaded after the fork, so no event loop or socket is shared), the order
# rotating from round to round; each cell is the median of the rounds.
# Wall time and the process's CPU time cover the command phase only.
# Replies are checked as they arrive (every SET answers OK, every GET the
# value this run's SET wrote for that key, in order): a cell whose client
# lost or garbled a reply is marked and kept out of the verdicts.
use strict;
use warnings;
use Getopt::Long qw(:config no_ignore_case bundling);
use File::Temp ();
use IO::Socket::INET;
use IO::Socket::UNIX;
use POSIX ();
use Time::HiRes qw(time clock_gettime CLOCK_PROCESS_CPUTIME_ID);
use FindBin ();

my $ROOT = "$FindBin::Bin/../..";
my @ARGV0 = @ARGV;

my %o = (n => 20000, rounds => 3, c => 50, p => 100, pin => 1, size => 3,
         clients => 'fior,fast,redispm,raw,c', shapes => 'seq,par,pipe', ops => 'set,get',
         timeout => 600);
GetOptions(
    'n=i'       => \$o{n},        'rounds|r=i' => \$o{rounds},
    'fast-n=i'  => \$o{fast_n},
    'c=i'       => \$o{c},        'P=i'        => \$o{p},
    'quick'     => \$o{quick},    'clients=s'  => \$o{clients},
    'shapes=s'  => \$o{shapes},   'ops=s'      => \$o{ops},
    'host=s'    => \$o{host},     'port=i'     => \$o{port},
    'unix:s'    => \$o{unix},     'blib=s'     => \$o{blib},
    'pin!'      => \$o{pin},      'out=s'      => \$o{out},
    'timeout=i' => \$o{timeout},  'compare=s' => \$o{compare},
    'raw=s'     => \$o{raw},
    'alt=s@'    => \$o{alt},      'alt-name=s@' => \$o{alt_name},
    'help|h'    => sub { usage(0) },
) or usage(1);
sub usage {
    print STDERR <<"EOT";
usage: $0 [options]
  -n N            operations per shape and command (default 20000; --quick: 2000)
  --fast-n N      operations in the parallel and pipelined shapes (default: -n),
                  so that they run long enough to measure
  -r, --rounds R  rounds; each cell is the median (default 3)
  -c C            commands in flight in the parallel shape (default 50)
  -P P            pipeline batch size (default 100)
  --quick         a short run (-n 2000)
  --clients LIST  fior,fast,redispm,raw,c (default: all that load). raw: RESP
                  by hand on a blocking socket (the Perl floor); c: aredis's C
                  client, bench/compare's worker (the ceiling), when built
  --compare PATH  that worker binary (default: build/bench/compare)
  --shapes LIST   seq,par,pipe (default); await: the sequential shape written
                  with Future::AsyncAwait (Future::IO::Redis only)
  --ops LIST      set,get
  --host H --port P   use that server instead of starting one
  --unix [PATH]   the unix socket (ours, or PATH with --host/--port's server)
  --blib DIR      where Future::IO::Redis is built (DIR/blib); default: \@INC,
                  else bindings/perl/blib
  --alt DIR       also run another build of Future::IO::Redis (DIR/blib), as
                  client "alt" (--alt-name NAME labels it): a change's effect.
                  May be repeated (alt, alt2, ...; one --alt-name each)
  --no-pin        do not pin the server to CPU 0 and the clients to CPU 1
  --out FILE      also write the Markdown report to FILE
  --raw FILE      and every measurement (round, client, shape, op, replies good
                  and bad, seconds, CPU, user, sys) as tab-separated lines
EOT
    exit $_[0];
}
$o{n} = 2000 if $o{quick} && !grep { /^-n/ } @ARGV0;
$o{fast_n} //= $o{n};
die "-n, --fast-n, -c, -P and --rounds must be positive\n"
    if $o{n} < 1 || $o{fast_n} < 1 || $o{c} < 1 || $o{p} < 1 || $o{rounds} < 1;
sub n_of { $_[0] =~ /^(seq|await)$/ ? $o{n} : $o{fast_n} }

# Where each child running a build of Future::IO::Redis finds it (the
# parent loads none of the clients: each child loads its own after fork).
my %INC_FOR = (fior => []);
if (defined $o{blib}) {
    $INC_FOR{fior} = ["$o{blib}/blib/lib", "$o{blib}/blib/arch"];
} elsif (!grep { -e "$_/Future/IO/Redis.pm" } @INC and -d "$ROOT/bindings/perl/blib/arch") {
    $INC_FOR{fior} = ["$ROOT/bindings/perl/blib/lib", "$ROOT/bindings/perl/blib/arch"];
}

# ---- Clients -----------------------------------------------------------------------------------

my %CLIENT = (
    fior    => { name => 'Future::IO::Redis', module => 'Future::IO::Redis' },
    fast    => { name => 'Redis::Fast',       module => 'Redis::Fast' },
    redispm => { name => 'Redis.pm',          module => 'Redis' },
    raw     => { name => 'raw socket',        module => 'IO::Socket' },
    c       => { name => 'aredis (C)',        module => '' },
);
my %SHORT = (fior => 'FIOR');    # the builds of Future::IO::Redis: fior, alt, alt2...
my @ALTS;
for my $i (0 .. $#{ $o{alt} || [] }) {
    my $id = $i ? 'alt' . ($i + 1) : 'alt';
    push @ALTS, $id;
    $CLIENT{$id} = { name => $o{alt_name}[$i] // "Future::IO::Redis ($id)", module => 'Future::IO::Redis' };
    $SHORT{$id} = $CLIENT{$id}{name};
    $INC_FOR{$id} = ["$o{alt}[$i]/blib/lib", "$o{alt}[$i]/blib/arch"];
}
my %SHAPE = (seq => 'Sequential', await => 'Sequential, async/await', par => 'Parallel', pipe => 'Pipelined');
my @clients = split /,/, $o{clients};
my @shapes  = split /,/, $o{shapes};
my @ops     = split /,/, $o{ops};
for (@clients) { die "unknown client '$_' (fior, fast, redispm, raw, c)\n" unless $CLIENT{$_} && !/^alt/ }
if (@ALTS) {    # right after fior
    my ($i) = grep { $clients[$_] eq 'fior' } 0 .. $#clients;
    splice @clients, defined $i ? $i + 1 : 0, 0, @ALTS;
}
for (@shapes)  { die "unknown shape '$_' (seq, await, par, pipe)\n" unless $SHAPE{$_} }
for (@ops)     { die "unknown op '$_' (set, get)\n" unless /^(set|get)$/ }

# ---- The server ----------------------------------------------------------------------------------

my $MAIN = $$;
my ($srv_pid, $srv_dir, $child_pid);
sub stop_server {
    return unless $$ == $MAIN;
    if ($child_pid) { kill 'TERM', $child_pid; waitpid $child_pid, 0; undef $child_pid }
    return unless $srv_pid;
    kill 'TERM', $srv_pid;
    my $t = time + 5;
    while (waitpid($srv_pid, POSIX::WNOHANG()) == 0) {
        if (time > $t) { kill 'KILL', $srv_pid; waitpid $srv_pid, 0; last }
        Time::HiRes::sleep(0.02);
    }
    undef $srv_pid;
}
END { stop_server() }
$SIG{$_} = sub { stop_server(); die "interrupted\n" } for qw(INT TERM HUP);

my $ncpu = do { my $n = `nproc 2>/dev/null`; chomp $n; $n || 1 };
my $taskset = `command -v taskset 2>/dev/null`; chomp $taskset;
my $pin = $o{pin} && $ncpu >= 2 && $taskset && !defined $o{host} && !defined $o{port};

my ($host, $port, $sock) = ($o{host} // '127.0.0.1', $o{port}, undef);
my $srv_version = '';
if (defined $o{host} || defined $o{port}) {
    $port //= 6379;
    $sock = $o{unix} if defined $o{unix} && length $o{unix};
    die "--unix needs a PATH when the server is given with --host/--port\n"
        if defined $o{unix} && !defined $sock;
} else {
    start_server();
    $sock = undef unless defined $o{unix};
}

sub free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1)
        or die "no free port: $!";
    my $p = $s->sockport;
    close $s;
    return $p;
}

sub start_server {
    chomp(my $bin = `command -v redis-server 2>/dev/null`);
    die "redis-server is not installed (or give --host/--port)\n" unless $bin;
    ($srv_version) = `$bin --version` =~ /v=(\S+)/;
    $srv_dir = File::Temp::tempdir('fior-bench-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    $sock = "$srv_dir/redis.sock";
    for my $try (1 .. 5) {
        my $p = free_port();
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            open STDOUT, '>', "$srv_dir/redis.log";
            open STDERR, '>&', \*STDOUT;
            setpgrp(0, 0);    # Ctrl-C reaches us, and we stop it
            my @pre = $pin ? ($taskset, '-c', '0') : ();
            no warnings 'exec';
        exec @pre, $bin, '--port', $p, '--bind', '127.0.0.1', '--unixsocket', $sock,
                '--unixsocketperm', '700', '--dir', $srv_dir, '--save', '', '--appendonly', 'no';
            POSIX::_exit(127);
        }
        $srv_pid = $pid;
        my $t = time + 10;
        while (time < $t) {
            last if waitpid($pid, POSIX::WNOHANG()) == $pid;
            if (my $c = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$p", Timeout => 1)) {
                print $c "PING\r\n";
                my $l = <$c> // '';
                if ($l =~ /^\+PONG/ && -S $sock) { $port = $p; return }
            }
            Time::HiRes::sleep(0.02);
        }
        kill 'KILL', $pid;
        waitpid $pid, 0;
        undef $srv_pid;
    }
    die "redis-server did not start:\n" . do { local (@ARGV, $/) = "$srv_dir/redis.log"; <> // '' };
}

# ---- Workload: keys, values, checks ------------------------------------------------------------

# K keys; a command's index i uses key i % K. Each phase writes (SET) or
# expects (GET) a value of --size bytes that depends on the key and on the
# phase's salt, so a GET can only pass if this phase's SETs reached the
# server and the replies come back to their own commands.
use constant K => 1000;
my @KEYS = map { sprintf 'bench:%04d', $_ } 0 .. K - 1;
my @ALPHA = ('a' .. 'z', 'A' .. 'Z', '0' .. '9');
sub values_for {
    my ($salt) = @_;
    return [map {
        my $x = ($_ * 7919 + $salt) % (62**3);
        my $v = $ALPHA[$x % 62] . $ALPHA[int($x / 62) % 62] . $ALPHA[int($x / 3844) % 62];
        substr($v x (1 + int($o{size} / 3)), 0, $o{size});
    } 0 .. K - 1];
}

# ---- Drivers: one per client; each shape returns the replies it checked good ------------------

# A driver: connect (untimed), then for each (shape, op) a sub run by the
# timing harness: ($n, $vals) -> (good replies, bad replies).
sub driver_fior {
    require IO::Async::Loop;
    require Future::IO;
    require Future::IO::Impl::IOAsync;
    require Future::IO::Redis;
    my $loop = IO::Async::Loop->new;
    my $r = Future::IO::Redis->new(defined $sock ? (path => $sock) : (host => $host, port => $port));
    $r->connect->get;
    my %d;
    $d{info} = sprintf 'Future::IO::Redis %s (aredis %s), Future::IO %s on %s %s',
        $Future::IO::Redis::VERSION, Future::IO::Redis::_XS::version(), $Future::IO::VERSION,
        ref $loop, $IO::Async::Loop::VERSION;
    $d{seq_set} = sub {
        my ($n, $v) = @_;
        my $bad = 0;
        for my $i (0 .. $n - 1) {
            my $k = $i % K;
            $bad++ unless ($r->set($KEYS[$k], $v->[$k])->get // '') eq 'OK';
        }
        return ($n - $bad, $bad);
    };
    $d{seq_get} = sub {
        my ($n, $v) = @_;
        my $bad = 0;
        for my $i (0 .. $n - 1) {
            my $k = $i % K;
            $bad++ unless ($r->get($KEYS[$k])->get // '') eq $v->[$k];
        }
        return ($n - $bad, $bad);
    };
    # The same written as programs for the reference design are: an async
    # sub awaiting each command (Future::AsyncAwait); only this client has it.
    if (eval { require Future::AsyncAwait; 1 }) {
        my ($aset, $aget) = eval q{
            use Future::AsyncAwait;
            (async sub {
                my ($n, $v) = @_;
                my $bad = 0;
                for my $i (0 .. $n - 1) {
                    my $k = $i % K;
                    $bad++ unless ((await $r->set($KEYS[$k], $v->[$k])) // '') eq 'OK';
                }
                return ($n - $bad, $bad);
            }, async sub {
                my ($n, $v) = @_;
                my $bad = 0;
                for my $i (0 .. $n - 1) {
                    my $k = $i % K;
                    $bad++ unless ((await $r->get($KEYS[$k])) // '') eq $v->[$k];
                }
                return ($n - $bad, $bad);
            });
        } or die $@;
        $d{await_set} = sub { $aset->(@_)->get };
        $d{await_get} = sub { $aget->(@_)->get };
    }
    # C in flight: each reply issues the next command. One on_done callback
    # for every future (the lightest way to hear of a reply; replies arrive
    # in order, the j-th is the j-th command's). A command that fails never
    # calls it: a watchdog ends the phase when replies stop coming, and the
    # missing ones count as bad.
    my $par = sub {
        my ($is_get, $n, $v) = @_;
        my ($sent, $got, $good, $bad) = (0, 0, 0, 0);
        my $all = $loop->new_future;
        my ($issue, $on_done);
        $on_done = sub {
            my $k = $got++ % K;
            if (($_[0] // '') eq ($is_get ? $v->[$k] : 'OK')) { $good++ } else { $bad++ }
            if ($sent < $n) { $issue->() } elsif ($got == $n) { $all->done }
        };
        $issue = $is_get
            ? sub { my $k = $sent++ % K; $r->get($KEYS[$k])->on_done($on_done) }
            : sub { my $k = $sent++ % K; $r->set($KEYS[$k], $v->[$k])->on_done($on_done) };
        my ($last, $timer, $watch) = (-1);
        $watch = sub {
            return if $all->is_ready;
            return $all->done if $got == $last;    # stalled
            $last = $got;
            $timer = $loop->watch_time(after => 2, code => $watch);
        };
        $timer = $loop->watch_time(after => 2, code => $watch);
        $issue->() while $sent < $o{c} && $sent < $n;
        $all->get;
        $loop->unwatch_time($timer) if defined $timer;
        undef $issue;
        undef $watch;
        return ($good, $bad + $n - $got);
    };
    $d{par_set} = sub { $par->(0, @_) };
    $d{par_get} = sub { $par->(1, @_) };
    # Batches of P: $redis->pipeline, P commands queued, ->execute, one
    # future of the array of replies.
    my $pipe = sub {
        my ($is_get, $n, $v) = @_;
        my ($i, $good, $bad) = (0, 0, 0);
        while ($i < $n) {
            my $m = $n - $i < $o{p} ? $n - $i : $o{p};
            my $pl = $r->pipeline;
            my $first = $i;
            if ($is_get) { $pl->get($KEYS[$i++ % K]) for 1 .. $m }
            else { for (1 .. $m) { my $k = $i++ % K; $pl->set($KEYS[$k], $v->[$k]) } }
            my $res = eval { $pl->execute->get } || [];
            for my $j (0 .. $m - 1) {
                my $x = $res->[$j];
                if (defined $x && !ref $x && $x eq ($is_get ? $v->[($first + $j) % K] : 'OK')) { $good++ }
                else { $bad++ }
            }
        }
        return ($good, $bad);
    };
    $d{pipe_set} = sub { $pipe->(0, @_) };
    $d{pipe_get} = sub { $pipe->(1, @_) };
    $d{prefill} = sub { my $v = shift; $r->set($KEYS[$_], $v->[$_])->get for 0 .. K - 1 };
    $d{close} = sub { $r->disconnect };
    return \%d;
}

# Redis::Fast and Redis.pm: the same synchronous-with-callbacks API. A
# command with a code ref as its last argument is queued; its callback
# (reply, error) runs from wait_one_response / wait_all_responses (or the
# next synchronous command).
sub driver_sync {
    my ($class) = @_;
    (my $file = "$class.pm") =~ s{::}{/}g;
    require $file;
    my $r = $class->new(defined $sock ? (sock => $sock) : (server => "$host:$port"), reconnect => 0);
    $r->ping;
    my %d;
    $d{info} = sprintf '%s %s', $class, $class->VERSION;
    $d{seq_set} = sub {
        my ($n, $v) = @_;
        my $bad = 0;
        for my $i (0 .. $n - 1) {
            my $k = $i % K;
            $bad++ unless (eval { $r->set($KEYS[$k], $v->[$k]) } // '') eq 'OK';
        }
        return ($n - $bad, $bad);
    };
    $d{seq_get} = sub {
        my ($n, $v) = @_;
        my $bad = 0;
        for my $i (0 .. $n - 1) {
            my $k = $i % K;
            $bad++ unless (eval { $r->get($KEYS[$k]) } // '') eq $v->[$k];
        }
        return ($n - $bad, $bad);
    };
    # One callback for every command: replies come in order.
    my $mk_cb = sub {
        my ($is_get, $v, $got, $good, $bad) = @_;
        return sub {
            my $k = $$got++ % K;
            if (!defined $_[1] && ($_[0] // '') eq ($is_get ? $v->[$k] : 'OK')) { $$good++ }
            else { $$bad++ }
        };
    };
    # C in flight as far as the API allows: wait_one_response, then top the
    # window up again.
    my $par = sub {
        my ($is_get, $n, $v) = @_;
        my ($sent, $got, $good, $bad) = (0, 0, 0, 0);
        my $cb = $mk_cb->($is_get, $v, \$got, \$good, \$bad);
        my $c = $o{c};
        while ($got < $n) {
            while ($sent < $n && $sent - $got < $c) {
                my $k = $sent++ % K;
                if ($is_get) { $r->get($KEYS[$k], $cb) } else { $r->set($KEYS[$k], $v->[$k], $cb) }
            }
            $r->wait_one_response;
        }
        return ($good, $bad);
    };
    $d{par_set} = sub { $par->(0, @_) };
    $d{par_get} = sub { $par->(1, @_) };
    # Batches of P: P commands with callbacks, then wait_all_responses.
    my $pipe = sub {
        my ($is_get, $n, $v) = @_;
        my ($i, $got, $good, $bad) = (0, 0, 0, 0);
        my $cb = $mk_cb->($is_get, $v, \$got, \$good, \$bad);
        while ($i < $n) {
            my $m = $n - $i < $o{p} ? $n - $i : $o{p};
            if ($is_get) { $r->get($KEYS[$i++ % K], $cb) for 1 .. $m }
            else { for (1 .. $m) { my $k = $i++ % K; $r->set($KEYS[$k], $v->[$k], $cb) } }
            $r->wait_all_responses;
        }
        return ($good, $bad);
    };
    $d{pipe_set} = sub { $pipe->(0, @_) };
    $d{pipe_get} = sub { $pipe->(1, @_) };
    $d{prefill} = sub { my $v = shift; $r->set($KEYS[$_], $v->[$_]) for 0 .. K - 1 };
    $d{close} = sub { $r->quit };
    return \%d;
}

# The floor: RESP written and read by hand on a blocking socket, no client
# library at all (it only understands +OK and bulk strings). What any Perl
# client pays for the round trip and the syscalls.
sub driver_raw {
    my $s = defined $sock ? IO::Socket::UNIX->new(Peer => $sock)
                          : IO::Socket::INET->new(PeerAddr => "$host:$port", Proto => 'tcp');
    die "raw: cannot connect: $!\n" unless $s;
    if (!defined $sock) { require Socket; setsockopt($s, Socket::IPPROTO_TCP(), Socket::TCP_NODELAY(), 1) }
    my $buf = '';
    my $enc = sub { join '', '*', scalar(@_), "\r\n", map { ('$', length($_), "\r\n", $_, "\r\n") } @_ };
    # Read m replies, checking each with $chk->(index, value).
    my $read = sub {
        my ($m, $chk) = @_;
        my $j = 0;
        while ($j < $m) {
            if ($buf =~ /\G\+([^\r]*)\r\n/gc) { $chk->($j++, $1); next }
            if ($buf =~ /\G\$(-?\d+)\r\n/gc) {
                my $len = $1;
                my $at = pos $buf;
                if ($len < 0) { $chk->($j++, undef); next }
                if (length($buf) >= $at + $len + 2) {
                    $chk->($j++, substr($buf, $at, $len));
                    pos($buf) = $at + $len + 2;
                    next;
                }
                pos($buf) = $at - length("\$$len\r\n");
            } elsif ($buf =~ /\G-([^\r]*)\r\n/gc) { $chk->($j++, "ERR $1"); next }
            my $p = pos($buf) // 0;
            substr($buf, 0, $p, '');
            my $k = sysread($s, $buf, 65536, length $buf);
            die "raw: read: " . ($k // $!) . "\n" unless $k;
        }
        substr($buf, 0, pos($buf) // 0, '');
    };
    my %d = (info => 'raw socket: hand-written RESP on IO::Socket (the floor)');
    $d{seq_set} = sub {
        my ($n, $v) = @_;
        my ($good, $bad) = (0, 0);
        my $chk = sub { if (($_[1] // '') eq 'OK') { $good++ } else { $bad++ } };
        for my $i (0 .. $n - 1) {
            my $k = $i % K;
            syswrite $s, $enc->('SET', $KEYS[$k], $v->[$k]);
            $read->(1, $chk);
        }
        return ($good, $bad);
    };
    $d{seq_get} = sub {
        my ($n, $v) = @_;
        my ($good, $bad, $k) = (0, 0, 0);
        my $chk = sub { if (($_[1] // '') eq $v->[$k]) { $good++ } else { $bad++ } };
        for my $i (0 .. $n - 1) {
            $k = $i % K;
            syswrite $s, $enc->('GET', $KEYS[$k]);
            $read->(1, $chk);
        }
        return ($good, $bad);
    };
    my $batch = sub {
        my ($is_get, $n, $v, $win) = @_;
        my ($sent, $got, $good, $bad) = (0, 0, 0, 0);
        my $chk = sub {
            my $k = $got++ % K;
            if (($_[1] // '') eq ($is_get ? $v->[$k] : 'OK')) { $good++ } else { $bad++ }
        };
        while ($got < $n) {
            my $out = '';
            while ($sent < $n && $sent - $got < $o{$win}) {
                my $k = $sent++ % K;
                $out .= $is_get ? $enc->('GET', $KEYS[$k]) : $enc->('SET', $KEYS[$k], $v->[$k]);
            }
            syswrite $s, $out if length $out;
            # pipe: the whole batch; par: whatever has arrived, at least one.
            $read->($win eq 'p' ? $sent - $got : 1, $chk);
        }
        return ($good, $bad);
    };
    $d{par_set}  = sub { $batch->(0, @_, 'c') };
    $d{par_get}  = sub { $batch->(1, @_, 'c') };
    $d{pipe_set} = sub { $batch->(0, @_, 'p') };
    $d{pipe_get} = sub { $batch->(1, @_, 'p') };
    $d{prefill}  = sub { my $v = shift; $d{seq_set}->(K, $v) };
    $d{close} = sub { close $s };
    return \%d;
}

# aredis's own C client, bench/compare's worker (one process per shape and
# op: it prints its own timing of the command phase and its user+sys CPU).
# The ceiling for every shape: what the server and the round trip allow.
# Its key is "key:__rand_int__" and it checks a GET's length, not the value.
sub run_c {
    my ($wfh) = @_;
    my @conn = defined $sock ? ('-u', $sock) : ('-h', $host, '-p', $port);
    my %mode = (seq => ['batch', 1], par => ['window', $o{c}], pipe => ['batch', $o{p}]);
    my @cshapes = grep { $mode{$_} } @shapes;
    my $run = sub {
        my ($op, $mode, $depth, $n) = @_;
        my @cmd = ($o{compare}, '--worker', 'aredis', '--op', $op, '--depth', $depth, '--mode', $mode,
                   '-n', $n, '-s', $o{size}, @conn);
        open my $ph, '-|', @cmd or die "$o{compare}: $!\n";
        my $out = join '', <$ph>;
        close $ph;
        $out =~ /RESULT ops=(\d+) errors=(\d+) secs=(\S+) user=(\S+) sys=(\S+)/
            or die "no RESULT from @cmd: $out\n";
        return ($1, $2, $3, $4, $5);
    };
    print $wfh "INFO c aredis's C client (bench/compare --worker aredis), on its built-in loop\n";
    $run->('set', 'batch', 1, 100);
    for my $shape (@cshapes) {
        for my $op (@ops) {
            my ($done, $err, $secs, $user, $sys) = $run->($op, @{ $mode{$shape} }, n_of($shape));
            printf $wfh "RES c %s %s %d %d %.6f %.6f %.2f %.2f\n", $shape, $op, $done - $err, $err,
                $secs, $user + $sys, $user, $sys;
        }
    }
}

# ---- The child: one client, every shape, one round ---------------------------------------------

sub child_run {
    my ($client, $round, $wfh) = @_;
    system("$taskset -pc 1 $$ >/dev/null") if $pin;
    alarm $o{timeout};
    return run_c($wfh) if $client eq 'c';
    unshift @INC, @{ $INC_FOR{$client} } if $INC_FOR{$client};
    my $d = $SHORT{$client} ? driver_fior()
          : $client eq 'fast' ? driver_sync('Redis::Fast')
          : $client eq 'redispm' ? driver_sync('Redis')
          : driver_raw();
    print $wfh "INFO $client $d->{info}\n";
    # Warm up: the keys exist, the code paths have run once.
    my $salt0 = ($round * 7 + 3) * 1009 + length $client;
    $d->{prefill}->(values_for($salt0));
    my $s = 0;
    for my $shape (@shapes) {
        my $salt = $salt0 + 97 * ++$s;
        my $v = values_for($salt);
        $d->{prefill}->($v) unless grep { $_ eq 'set' } @ops;
        for my $op (@ops) {
            my $f = $d->{"${shape}_$op"} or next;
            my ($u0, $s0) = times;
            my $c0 = clock_gettime(CLOCK_PROCESS_CPUTIME_ID);
            my $t0 = time;
            my $n = n_of($shape);
            my ($good, $bad) = $f->($n, $v);
            my $secs = time - $t0;
            my $cpu = clock_gettime(CLOCK_PROCESS_CPUTIME_ID) - $c0;
            my ($u1, $s1) = times;
            $bad += $n - $good - $bad if $good + $bad != $n;
            printf $wfh "RES %s %s %s %d %d %.6f %.6f %.2f %.2f\n", $client, $shape, $op, $good, $bad,
                $secs, $cpu, $u1 - $u0, $s1 - $s0;
        }
    }
    $d->{close}->();
}

sub run_child {
    my ($client, $round) = @_;
    pipe(my $rfh, my $wfh) or die "pipe: $!";
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        close $rfh;
        $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP);
        select((select($wfh), $| = 1)[0]);
        my $ok = eval { child_run($client, $round, $wfh); 1 };
        print $wfh "ERR $client ", ($@ =~ s/\s+/ /gr), "\n" unless $ok;
        close $wfh;
        POSIX::_exit($ok ? 0 : 1);
    }
    close $wfh;
    $child_pid = $pid;
    my @lines = <$rfh>;
    close $rfh;
    waitpid $pid, 0;
    undef $child_pid;
    push @lines, "ERR $client exited with status " . ($? >> 8) . ($? & 127 ? " signal " . ($? & 127) : '') . "\n"
        if $? && !grep { /^ERR/ } @lines;
    return @lines;
}

# ---- Which clients load ------------------------------------------------------------------------

my (%info, %missing);
$o{compare} //= "$ROOT/build/bench/compare";
for my $c (@clients) {
    next if $c eq 'raw';
    if ($c eq 'c') { $missing{$c} = 1 unless -x $o{compare}; next }
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDERR, '>', '/dev/null';
        (my $f = "$CLIENT{$c}{module}.pm") =~ s{::}{/}g;
        unshift @INC, @{ $INC_FOR{$c} } if $INC_FOR{$c};
        my $ok = eval { require $f; if ($SHORT{$c}) { require Future::IO::Impl::IOAsync } 1 };
        POSIX::_exit($ok ? 0 : 1);
    }
    waitpid $pid, 0;
    $missing{$c} = 1 if $?;
}
for my $c (grep { $missing{$_} } @clients) {
    warn $c eq 'c' ? "no $o{compare} (build bench/ or give --compare): aredis (C) left out\n"
                   : "$CLIENT{$c}{name} does not load: left out\n";
}
@clients = grep { !$missing{$_} } @clients;
die "no client to run\n" unless @clients;

# ---- Rounds --------------------------------------------------------------------------------------

my %res;   # {shape}{op}{client} => [ {ops, cpu_us, bad, ...} per round ]
my @raw = ("round\tclient\tshape\top\tgood\tbad\tsecs\tcpu\tuser\tsys\tops_per_s");
my @errors;
my $T0 = time;
my $transport = defined $sock ? "unix socket" : "TCP $host:$port";
printf STDERR "bench: %d ops per cell (parallel, pipelined: %d), %d rounds, C=%d, P=%d, %s%s\n", $o{n}, $o{fast_n}, $o{rounds}, $o{c}, $o{p},
    $transport, $pin ? ', server on CPU 0, clients on CPU 1' : '';
for my $round (1 .. $o{rounds}) {
    my @order = map { $clients[($_ + $round - 1) % @clients] } 0 .. $#clients;
    for my $c (@order) {
        printf STDERR "  round %d/%d: %-18s", $round, $o{rounds}, $CLIENT{$c}{name};
        my $t = time;
        for (run_child($c, $round)) {
            chomp;
            if (/^INFO (\S+) (.*)/) { $info{$1} = $2 }
            elsif (/^RES (\S+) (\S+) (\S+) (\d+) (\d+) (\S+) (\S+) (\S+) (\S+)/) {
                push @{ $res{$2}{$3}{$1} }, { good => $4, bad => $5, secs => $6, cpu => $7,
                    user => $8, sys => $9, ops => $4 / ($6 || 1e-9) };
                push @raw, join "\t", $round, $1, $2, $3, $4, $5, $6, $7, $8, $9, sprintf('%.0f', $4 / ($6 || 1e-9));
            } elsif (/^ERR (\S+) (.*)/) { push @errors, "$CLIENT{$1}{name}, round $round: $2" }
        }
        printf STDERR " %.1f s\n", time - $t;
    }
}
my $elapsed = time - $T0;
stop_server();

# ---- Report --------------------------------------------------------------------------------------

sub median {
    my @x = sort { $a <=> $b } @_;
    return undef unless @x;
    return @x % 2 ? $x[$#x / 2] : ($x[@x / 2 - 1] + $x[@x / 2]) / 2;
}
# A cell: median ops/s and CPU µs per command; undef when not run; bad when
# any round lost a reply.
sub cell {
    my ($shape, $op, $c) = @_;
    my $r = $res{$shape}{$op}{$c} or return undef;
    my $bad = 0;
    $bad += $_->{bad} for @$r;
    return { ops => median(map { $_->{ops} } @$r), cpu_us => median(map { $_->{cpu} / ($_->{good} + $_->{bad} || 1) * 1e6 } @$r),
             bad => $bad, rounds => scalar @$r,
             min => (sort { $a <=> $b } map { $_->{ops} } @$r)[0],
             max => (sort { $b <=> $a } map { $_->{ops} } @$r)[0] };
}
sub fmt_ops { my $x = shift; return 'n/a' unless $x; return $x->{bad} ? sprintf('%.0f ✗ (%d bad replies)', $x->{ops}, $x->{bad}) : sprintf('%.0f', $x->{ops}) }
sub ratio {
    my ($a, $b) = @_;
    return undef unless $a && $b && !$a->{bad} && !$b->{bad} && $b->{ops};
    return $a->{ops} / $b->{ops};
}
sub fmt_ratio { my $x = shift; defined $x ? sprintf('%.2f×', $x) : 'n/a' }

my %REF = (raw => 1, c => 1);    # references, not contenders
my @main = grep { !$REF{$_} } @clients;
my @cont = grep { $SHORT{$_} } @clients;               # the builds of Future::IO::Redis
my @others = grep { !$SHORT{$_} } @main;               # what they are compared with
my $cmdline = join ' ', 'perl', 'bench/perl/bench.pl', map { /[\s'"]/ ? "'$_'" : $_ } @ARGV0;
my @md;
push @md, '# Perl clients: Future::IO::Redis, Redis::Fast, Redis.pm', '';
push @md, sprintf 'Command: `%s` — %s, %.0f s.', $cmdline, POSIX::strftime('%Y-%m-%d %H:%M UTC', gmtime), $elapsed;
push @md, '';
push @md, sprintf '- %d operations per cell (SET, then GET, of %d-byte values on %d keys), median of %d rounds; each client in its own process per round, order rotating.',
    $o{n}, $o{size}, K, $o{rounds};
$md[-1] =~ s/operations per cell/operations per cell in the sequential shape, $o{fast_n} in the parallel and pipelined ones/ if $o{fast_n} != $o{n};
push @md, sprintf '- Server: redis-server %s, %s, %s; %s.', $srv_version || '(given)',
    defined $o{host} || defined $o{port} ? 'given' : 'started for the run (--save "" --appendonly no)',
    $transport, $pin ? 'server pinned to CPU 0, clients to CPU 1' : "no pinning ($ncpu CPUs)";
push @md, sprintf '- Perl %s; %s.', $^V, join '; ', map { ($_ ne 'fior' && $SHORT{$_} ? "$CLIENT{$_}{name} = " : '') . ($info{$_} // $CLIENT{$_}{name}) } @clients;
my @builds = map { "$CLIENT{$_}{name} from " . ($INC_FOR{$_}[0] =~ s{/blib/lib$}{}r) } grep { $SHORT{$_} && @{ $INC_FOR{$_} } } @clients;
push @md, '- Builds of Future::IO::Redis: ' . join('; ', @builds) . '.' if @builds;
push @md, '- Net::Async::Redis is not installed here (and cannot be: no network beyond Debian packages), so the pure-Perl comparison is Redis.pm (synchronous).';
push @md, '- Shapes: **sequential** waits for each reply before the next command; **parallel** keeps C='
    . $o{c} . ' commands in flight (Future::IO::Redis: each reply issues the next; Redis::Fast and Redis.pm: callbacks, `wait_one_response`, top the window up); **pipelined** sends batches of P='
    . $o{p} . ' (Future::IO::Redis: `$redis->pipeline`, P commands, `->execute`; Redis::Fast and Redis.pm: P commands with callbacks, then `wait_all_responses`).';
push @md, '- ops/s: the client\'s wall time over the command phase; FIOR = Future::IO::Redis. CPU: the client process\'s user+sys (CLOCK_PROCESS_CPUTIME_ID) over the same phase, µs per command.';
push @md, '- References, not contenders: **raw socket** is RESP written and parsed by hand on a blocking socket, no library (what any Perl client pays for the syscalls and the round trip); **aredis (C)** is aredis\'s own C client in the same shape (bench/compare\'s worker, key `key:__rand_int__`, GET checked by length): what the server and the round trip allow.'
    if grep { $REF{$_} } @clients;
push @md, '- Every reply is checked (SET: OK; GET: the value this phase wrote for that key, in order); ✗ marks a cell with lost or wrong replies.';
push @md, '';
my %verdict;
for my $shape (@shapes) {
    my @cols = @clients;
    push @md, "## $SHAPE{$shape}" . ($shape eq 'par' ? " (C=$o{c})" : $shape eq 'pipe' ? " (P=$o{p})" : ''), '';
    my @hdr = ('ops/s', (map { $CLIENT{$_}{name} . ($REF{$_} ? ' (ref.)' : '') } @cols),
               (map { my $f = $_; map { "$SHORT{$f} / $CLIENT{$_}{name}" } @others } @cont));
    push @md, '| ' . join(' | ', @hdr) . ' |';
    push @md, '|' . join('|', ':---', map { '---:' } 1 .. $#hdr) . '|';
    my @cpu;
    for my $op (@ops) {
        my %c = map { $_ => cell($shape, $op, $_) } @cols;
        my @row = (uc $op, map { fmt_ops($c{$_}) } @cols);
        for my $f (@cont) {
            for my $x (@others) {
                my $q = ratio($c{$f}, $c{$x});
                $verdict{$f}{$shape}{$op}{$x} = $q;
                push @row, fmt_ratio($q);
            }
        }
        push @md, '| ' . join(' | ', @row) . ' |';
        push @cpu, '| ' . join(' | ', uc $op, map { $c{$_} ? sprintf('%.2f', $c{$_}{cpu_us}) : 'n/a' } @cols) . ' |';
    }
    push @md, '', '| client CPU µs/command | ' . join(' | ', map { $CLIENT{$_}{name} } @cols) . ' |',
        '|' . join('|', ':---', map { '---:' } @cols) . '|', @cpu, '';
}

# Verdicts, for each build of Future::IO::Redis.
my @v;
for my $f (@cont) {
    my $who = $CLIENT{$f}{name};
    my $pp = $verdict{$f}{pipe};
    if ($pp && grep { $_ eq 'fast' } @clients) {
        my @q = map { $pp->{$_}{fast} } @ops;
        my $met = !grep { !defined $_ || $_ < 2 } @q;
        push @v, sprintf '**%s: target ≥ 2× Redis::Fast pipelined %s** (%s).', $who, $met ? 'met' : 'NOT met',
            join ', ', map { sprintf '%s %s', uc $ops[$_], fmt_ratio($q[$_]) } 0 .. $#ops;
    }
    if (grep { $_ eq 'redispm' } @clients) {
        my @parts;
        for my $s (grep { /^(par|pipe)$/ } @shapes) {
            my @q = map { $verdict{$f}{$s}{$_}{redispm} } @ops;
            my $met = !grep { !defined $_ || $_ < 5 } @q;
            push @parts, sprintf '%s %s: %s', lc $SHAPE{$s}, $met ? 'met' : 'NOT met',
                join ', ', map { sprintf '%s %s', uc $ops[$_], fmt_ratio($q[$_]) } 0 .. $#ops;
        }
        push @v, sprintf '**%s: target ≥ 5× pure-Perl clients** (Net::Async::Redis is not installed; against Redis.pm): %s.',
            $who, join '; ', @parts if @parts;
    }
    if (grep { $_ eq 'seq' } @shapes) {
        my @parts;
        for my $op (@ops) {
            my $x = cell('seq', $op, $f) or next;
            my ($best) = sort { $b->[1] <=> $a->[1] }
                map { my $y = cell('seq', $op, $_); $y && !$y->{bad} ? [$_, $y->{ops}] : () } @others;
            my $rt = cell('seq', $op, 'raw');
            push @parts, sprintf '%s %.0f ops/s = %.1f µs a command%s%s', uc $op, $x->{ops}, 1e6 / $x->{ops},
                $rt ? sprintf(' against %.1f µs for the raw socket\'s round trip (%.0f%% of its rate)', 1e6 / $rt->{ops}, 100 * $x->{ops} / $rt->{ops}) : '',
                $best ? sprintf(', %.2f× %s', $x->{ops} / $best->[1], $CLIENT{$best->[0]}{name}) : '';
        }
        push @v, "$who, sequential (bounded by the round trip): " . join('; ', @parts) . '.' if @parts;
    }
    if (grep { $_ eq 'await' } @shapes) {
        my @parts = map { my $x = cell('await', $_, $f); $x ? sprintf('%s %.0f ops/s = %.1f µs a command', uc $_, $x->{ops}, 1e6 / $x->{ops}) : () } @ops;
        push @v, "$who, sequential with async/await: " . join('; ', @parts) . '.' if @parts;
    }
}
# What the server and the round trip allow in the pipelined shape: aredis's
# C client, as a multiple of Redis::Fast.
if ((grep { $_ eq 'pipe' } @shapes) && (grep { $_ eq 'c' } @clients) && (grep { $_ eq 'fast' } @clients)) {
    my @ceil = map { ratio(cell('pipe', $_, 'c'), cell('pipe', $_, 'fast')) } @ops;
    push @v, sprintf 'Ceiling of the pipelined shape here: aredis\'s C client does %s Redis::Fast (batches of %d, '
        . 'each waited for: the server\'s time and the round trip add to the client\'s); no Perl client can pass it.',
        join(', ', map { sprintf '%s %s', uc $ops[$_], fmt_ratio($ceil[$_]) } 0 .. $#ops), $o{p};
}
push @v, 'No target applies to the shapes and clients run (the targets concern the pipelined and sequential shapes against Redis::Fast and Redis.pm).' unless @v;
my $bad_cells = 0;
for my $s (@shapes) { for my $op (@ops) { for my $c (@clients) { my $x = cell($s, $op, $c); $bad_cells++ if $x && $x->{bad} } } }
push @v, "**$bad_cells cell(s) had lost or wrong replies (✗): left out of the ratios.**" if $bad_cells;
push @v, map { "Error: $_" } @errors;
push @md, '## Verdict', '', map({ "- $_" } @v), '';

my $md = join("\n", @md) . "\n";
print $md;
if ($o{out}) {
    open my $fh, '>', $o{out} or die "$o{out}: $!\n";
    print $fh $md;
    close $fh;
    print STDERR "bench: wrote $o{out}\n";
}
if ($o{raw}) {
    open my $fh, '>', $o{raw} or die "$o{raw}: $!\n";
    print $fh map { "$_\n" } @raw;
    close $fh;
    print STDERR "bench: wrote $o{raw}\n";
}
exit(@errors || $bad_cells ? 1 : 0);
