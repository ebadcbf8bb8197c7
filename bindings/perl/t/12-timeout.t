use strict;
use warnings;
use Test2::V0;
use lib 't/lib';
use FIORTest;
use Future::IO::Redis;
use IO::Async::Timer::Periodic;

# request_timeout: a command the server does not answer in time fails with
# a Timeout error, and the late reply, when it comes, is nobody's.

my $srv = start_server();
my $probe = Future::IO::Redis->new(host => '127.0.0.1', port => $srv->port);
run { $probe->connect };

# Wait until the server answers again (a DEBUG SLEEP is over).
sub server_awake { run { $probe->ping } }

subtest 'a slow command times out, in bounded time' => sub {
    my @connects;
    my $r = Future::IO::Redis->new(host => '127.0.0.1', port => $srv->port,
        request_timeout => 0.5, on_connect => sub { push @connects, 1 });
    run { $r->connect };

    my $ticks = 0;
    my $timer = IO::Async::Timer::Periodic->new(interval => 0.05, on_tick => sub { $ticks++ });
    $FIORTest::LOOP->add($timer);
    $timer->start;
    my ($t, undef, $e) = elapsed { run { $r->command('DEBUG', 'SLEEP', 2) } };
    $timer->stop;
    $FIORTest::LOOP->remove($timer);

    isa_ok($e, ['Future::IO::Redis::Error::Timeout'], 'DEBUG SLEEP 2 with request_timeout 0.5');
    is($e->code, 'AREDIS_ERR_TIMEOUT', 'aredis: TIMEOUT');
    like("$e", qr/timed?\s*out/i, 'the message says timed out');
    ok($t >= 0.4, "not before the deadline (${t}s)");
    ok($t < 1.5, "soon after it, not when the server answers (${t}s)");
    ok($ticks >= 3, "the loop ran meanwhile ($ticks ticks)");

    # Issued now, behind the sleeping command: WAIT 0 answers at once (an
    # integer) when the server wakes; its deadline has the block time added.
    my $after = $r->wait(0, 2500);
    is(run { $after }, 0, 'the next command gets ITS OWN reply (0), not the late OK');
    is(run { $r->echo('mine') }, 'mine', 'and the one after it too');
    is(scalar @connects, 1, 'on the same connection (no reconnect)');
    is($r->stats->{timeouts}, 1, 'stats: one timeout');
    is($r->stats->{pending}, 0, 'stats: nothing pending');
    ok($r->is_connected, 'still connected');
};

subtest 'commands behind a stuck one time out too; later ones work' => sub {
    my $r = Future::IO::Redis->new(host => '127.0.0.1', port => $srv->port, request_timeout => 0.5);
    run { $r->connect };
    run { $r->set('t:k', 'v') };
    my $sleep = $r->command('DEBUG', 'SLEEP', 1.5);
    my @behind = map { $r->get('t:k') } 1 .. 5;
    my ($t, undef, $e) = elapsed { run { Future->wait_all($sleep, @behind) } };
    ok($t < 1.4, "all ended before the server woke (${t}s)");
    for my $f ($sleep, @behind) {
        my $err = $f->failure;
        isa_ok($err, ['Future::IO::Redis::Error::Timeout'], 'timed out');
    }
    server_awake();
    is([run { Future->needs_all(map { $r->get('t:k') } 1 .. 5) }], [('v') x 5],
        'after the server woke: each GET its own reply');
};

subtest 'a blocking command gets its block time on top' => sub {
    my $r = Future::IO::Redis->new(host => '127.0.0.1', port => $srv->port, request_timeout => 0.5);
    run { $r->connect };
    run { $r->del('t:empty') };
    my ($t, $v, $e) = elapsed { run { $r->blpop('t:empty', 1) } };
    is($e, '', 'BLPOP 1 with request_timeout 0.5 does not time out');
    is($v, undef, 'the server\'s own timeout: undef');
    ok($t >= 0.9, "it waited the block time (${t}s)");
};

subtest 'waiting costs no CPU (timers sleep, they do not spin)' => sub {
    my $r = Future::IO::Redis->new(host => '127.0.0.1', port => $srv->port);
    run { $r->connect };
    my @t0 = times;
    is(run { $r->command('DEBUG', 'SLEEP', 1) }, 'OK', 'a 1 s command');
    my @t1 = times;
    my $cpu = ($t1[0] - $t0[0]) + ($t1[1] - $t0[1]);
    ok($cpu < 0.3, "CPU used while waiting 1 s: ${cpu}s");
};

subtest 'the default request_timeout is 5 s (the reference design\'s)' => sub {
    my $r = Future::IO::Redis->new(host => '127.0.0.1', port => $srv->port);
    run { $r->connect };
    is(run { $r->command('DEBUG', 'SLEEP', 0.6) }, 'OK', 'a 0.6 s command completes');
};

done_testing;
