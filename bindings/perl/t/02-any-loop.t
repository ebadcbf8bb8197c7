use strict;
use warnings;
use Test2::V0;
use lib 't/lib';
use FIORTest;
use File::Temp ();
use Future::IO::Redis;

# The binding waits only through Future::IO: it runs on whatever event loop
# the program's Future::IO implementation drives. Here: IO::Async's (in this
# process), IO::Async with each of its loops, and a minimal implementation
# written below on select(2) (each in a process of its own, since Future::IO
# has one implementation per process); and a clear error without one.

my $srv = start_server();
my $port = $srv->port;

subtest 'Future::IO::Impl::IOAsync (this process)' => sub {
    is($Future::IO::IMPL, 'Future::IO::Impl::IOAsync', 'the implementation in use');
    my $r = Future::IO::Redis->new(host => '127.0.0.1', port => $port);
    run { $r->connect };
    is(run { $r->set('loop:k', 'ioasync') }, 'OK', 'SET');
    is(run { $r->get('loop:k') }, 'ioasync', 'GET');
};

# Run a Perl program in a child process with this test's @INC; its stdout.
sub perl_out {
    my ($code, %env) = @_;
    my $tmp = File::Temp->new(SUFFIX => '.pl');
    print {$tmp} $code;
    close $tmp;
    local @ENV{ keys %env } = values %env;
    my @cmd = ($^X, (map {"-I$_"} grep { !ref } @INC), $tmp->filename);
    my $pid = open(my $out, '-|') // die "fork: $!";
    if (!$pid) {
        open STDERR, '>&', \*STDOUT;
        exec @cmd or POSIX::_exit(127);
    }
    local $/;
    my $text = <$out>;
    close $out;
    return ($? >> 8, $text);
}

my $ioasync_prog = <<'PERL';
use strict; use warnings;
use IO::Async::Loop;
use Future::IO;
use Future::IO::Impl::IOAsync;
use Future::IO::Redis;
my $loop = IO::Async::Loop->new;
print "loop: ", ref $loop, "\n";
my $r = Future::IO::Redis->new(host => '127.0.0.1', port => $ENV{FIOR_PORT}, request_timeout => 0.3);
$r->connect->get;
print "set: ", $r->set('loop:k', ref $loop)->get, "\n";
print "get: ", $r->get('loop:k')->get, "\n";
my @f = map { $r->echo("e$_") } 1 .. 200;
print "many: ", join(',', Future->needs_all(@f)->get) eq join(',', map {"e$_"} 1 .. 200) ? "ok" : "WRONG", "\n";
my $e = eval { $r->command('DEBUG', 'SLEEP', 0.6)->get; 1 } ? 'none' : ref $@;
print "timeout: $e\n";
Future::IO->sleep(0.5)->get;    # the server sleeps on
print "after: ", $r->echo('after')->get, "\n";
PERL

for my $kind (qw(Epoll Poll Select)) {
    subtest "IO::Async::Loop::$kind (a process of its own)" => sub {
        my ($status, $out) = perl_out($ioasync_prog, IO_ASYNC_LOOP => $kind, FIOR_PORT => $port);
        is($status, 0, 'exit 0') or diag $out;
        like($out, qr/^loop: IO::Async::Loop::$kind$/m, "the loop is IO::Async::Loop::$kind");
        like($out, qr/^set: OK$/m, 'SET');
        like($out, qr/^get: IO::Async::Loop::$kind$/m, 'GET');
        like($out, qr/^many: ok$/m, '200 commands in flight, each its own reply');
        like($out, qr/^timeout: Future::IO::Redis::Error::Timeout$/m, 'a request timeout');
        like($out, qr/^after: after$/m, 'then the next command');
    };
}

# A Future::IO implementation in 40 lines, on select(2): the binding needs
# nothing but sleep, ready_for_read and ready_for_write (and futures whose
# ->get runs the loop).
my $mini_prog = <<'PERL';
use strict; use warnings;
package MiniFuture;
use parent 'Future';
sub await { my $self = shift; MiniImpl::run_once() until $self->is_ready; return $self }
package MiniImpl;
use Time::HiRes ();
our (@timers, %wait);    # [when, future]; "r:fd"/"w:fd" => [[fh, future]...]
sub HAVE_MULTIPLE_FILEHANDLES { 1 }
sub sleep { my (undef, $s) = @_; my $f = MiniFuture->new; push @timers, [Time::HiRes::time() + $s, $f]; $f }
sub _ready { my ($dir, $fh) = @_; my $f = MiniFuture->new; push @{ $wait{ $dir . fileno $fh } }, [$fh, $f]; $f }
sub ready_for_read  { _ready('r', $_[1]) }
sub ready_for_write { _ready('w', $_[1]) }
our $turns = 0;
sub run_once {
    $turns++;
    @timers = grep { !$_->[1]->is_ready } @timers;
    for my $k (keys %wait) { @{ $wait{$k} } = grep { !$_->[1]->is_ready } @{ $wait{$k} }; delete $wait{$k} unless @{ $wait{$k} } }
    my ($rv, $wv) = ('', '');
    for my $k (keys %wait) { my ($d, $fd) = $k =~ /^(.)(\d+)$/; vec($d eq 'r' ? $rv : $wv, $fd, 1) = 1 }
    my $now = Time::HiRes::time();
    my $t = 1;
    for (@timers) { my $in = $_->[0] - $now; $t = $in if $in < $t }
    $t = 0 if $t < 0;
    my $n = select(my $ro = $rv, my $wo = $wv, undef, $t);
    $now = Time::HiRes::time();
    my @due = grep { $_->[0] <= $now } @timers;
    @timers = grep { $_->[0] > $now } @timers;
    $_->[1]->done for grep { !$_->[1]->is_ready } @due;
    return if $n <= 0;
    for my $k (keys %wait) {
        my ($d, $fd) = $k =~ /^(.)(\d+)$/;
        next unless vec($d eq 'r' ? $ro : $wo, $fd, 1);
        my $list = delete $wait{$k};
        $_->[1]->done for grep { !$_->[1]->is_ready } @$list;
    }
}
package main;
use Future::IO;
Future::IO->override_impl('MiniImpl');
require Future::IO::Redis;
my $r = Future::IO::Redis->new(host => '127.0.0.1', port => $ENV{FIOR_PORT}, request_timeout => 0.3);
$r->connect->get;
print "future class: ", ref $r->ping, "\n";
print "set: ", $r->set('loop:mini', 'select')->get, "\n";
print "get: ", $r->get('loop:mini')->get, "\n";
my @f = map { $r->echo("e$_") } 1 .. 200;
print "many: ", join(',', Future->needs_all(@f)->get) eq join(',', map {"e$_"} 1 .. 200) ? "ok" : "WRONG", "\n";
print "pipeline: ", join(',', @{ $r->pipeline->incr('loop:n')->incr('loop:n')->execute->get }), "\n";
my $e = eval { $r->command('DEBUG', 'SLEEP', 0.6)->get; 1 } ? 'none' : ref $@;
print "timeout: $e\n";
Future::IO->sleep(0.5)->get;    # the server sleeps on
print "after: ", $r->echo('after')->get, "\n";
print "turns: $MiniImpl::turns\n";
PERL

subtest 'a minimal Future::IO implementation on select(2) (a process of its own)' => sub {
    my ($status, $out) = perl_out($mini_prog, FIOR_PORT => $port);
    is($status, 0, 'exit 0') or diag $out;
    like($out, qr/^future class: MiniFuture$/m, 'futures are the implementation\'s');
    like($out, qr/^set: OK$/m, 'SET');
    like($out, qr/^get: select$/m, 'GET');
    like($out, qr/^many: ok$/m, '200 commands in flight');
    like($out, qr/^pipeline: 1,2$/m, 'a pipeline');
    like($out, qr/^timeout: Future::IO::Redis::Error::Timeout$/m, 'a request timeout (timers)');
    like($out, qr/^after: after$/m, 'then the next command');
    my ($turns) = $out =~ /^turns: (\d+)$/m;
    ok($turns && $turns < 2000, 'the loop slept instead of spinning (' . ($turns // '?') . ' turns)');
};

subtest 'no Future::IO implementation that watches several handles: a clear error' => sub {
    my ($status, $out) = perl_out(<<'PERL', FIOR_PORT => $port);
use strict; use warnings;
use Future::IO;
use Future::IO::Redis;
my $r = Future::IO::Redis->new(host => '127.0.0.1', port => $ENV{FIOR_PORT});
my $ok = eval { $r->connect->get; 1 };
print "error: $@" unless $ok;
# having asked, the program can still choose one
require Future::IO::Impl::IOAsync;
print "impl: $Future::IO::IMPL\n";
$r->connect->get;
print "then: ", $r->ping->get, "\n";
PERL
    like($out, qr/^error: Future::IO::Redis needs a Future::IO implementation that can watch several handles/m,
        'connect dies saying what is needed');
    like($out, qr/load_impl/, 'and how to get it');
    like($out, qr/^impl: Future::IO::Impl::IOAsync$/m, 'an implementation can still be loaded afterwards');
    like($out, qr/^then: PONG$/m, 'and then the client works');
};

subtest 'Future::IO->load_impl, as the reference design\'s synopsis calls it' => sub {
    my ($status, $out) = perl_out(<<'PERL', FIOR_PORT => $port);
use strict; use warnings;
use Future::IO::Redis;
use IO::Async::Loop;
use Future::IO;
Future::IO->load_impl('IOAsync');
print "impl: $Future::IO::IMPL\n";
my $r = Future::IO::Redis->new(host => '127.0.0.1', port => $ENV{FIOR_PORT});
$r->connect->get;
print "ping: ", $r->ping->get, "\n";
my $ok = eval { Future::IO->load_impl('NoSuchImpl'); 1 };
print "bad: ", ($ok ? 'loaded?' : $@);
PERL
    is($status, 0, 'exit 0') or diag $out;
    like($out, qr/^impl: Future::IO::Impl::IOAsync$/m, 'load_impl(\'IOAsync\')');
    like($out, qr/^ping: PONG$/m, 'the client works');
    like($out, qr/^bad: .*NoSuchImpl/m, 'an implementation that is not there: an error naming it');
};

done_testing;
