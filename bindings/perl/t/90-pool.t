use strict;
use warnings;
use Test2::V0;
use lib 't/lib';
use FIORTest;
use Future::AsyncAwait;
use Future::IO::Redis;
use Future::IO::Redis::Pool;
use Time::HiRes ();

my $srv = start_server();
my @conn = (host => '127.0.0.1', port => $srv->port);
my $other = Future::IO::Redis->new(@conn);
run { $other->connect };

sub pool { Future::IO::Redis::Pool->new(@conn, @_) }

subtest 'construction' => sub {
    my $pool = pool(min => 0, max => 5);
    is($pool->min, 0, 'min');
    is($pool->max, 5, 'max');
    is(pool()->max, 10, 'max defaults to 10');
    like(dies { pool(colour => 'red') }, qr/unknown option 'colour'/, 'unknown options refused');
    like(dies { pool(min => 3, max => 2) }, qr/min \(3\) is above max \(2\)/, 'min above max refused');
    my $by_uri = Future::IO::Redis::Pool->new(uri => $srv->url, min => 0);
    is(run { $by_uri->ping }, 'PONG', 'uri => ...');
};

subtest 'acquire and release' => sub {
    my $pool = pool(min => 1, max => 3);
    my $conn = run { $pool->acquire };
    isa_ok($conn, 'Future::IO::Redis');
    ok($conn->is_connected, 'the connection is ready');
    is(run { $conn->ping }, 'PONG', 'commands run on it');
    is(run { $conn->set('pool:k', 'v') }, 'OK', 'command methods run on it');
    my $p = $conn->pipeline;
    $p->incr('pool:n')->incr('pool:n');
    is(run { $p->execute }, [1, 2], 'pipelines run on it');
    is(run { $conn->multi(sub { $_[0]->incr('pool:n') }) }, [3], 'transactions run on it');
    my $id = run { $conn->client_id };
    is($pool->stats->{active}, 1, 'stats: 1 active');

    $pool->release($conn);
    my $s = $pool->stats;
    is($s->{active}, 0, 'released: 0 active');
    is($s->{idle}, 1, 'released: it is idle');

    my $e = dies { run { $conn->get('pool:k') } };
    isa_ok($e, 'Future::IO::Redis::Error::Disconnected');
    like("$e", qr/released to its pool/, 'a released connection runs no command');
    ok(!$conn->is_connected, 'a released connection says it is not connected');
    $pool->release($conn);
    is($pool->stats->{idle}, 1, 'a second release does nothing');

    my $again = run { $pool->acquire };
    ref_is($again, $conn, 'the same connection comes back, as the same object');
    is(run { $again->client_id }, $id, '...on the same server connection');
    is(run { $again->get('pool:k') }, 'v', 'and it works again');
    $pool->release($again);
};

subtest 'a connection dropped without release goes back' => sub {
    my $pool = pool(min => 0, max => 1);
    {
        my $conn = run { $pool->acquire };
        is($pool->stats->{active}, 1, 'held');
    }
    is($pool->stats->{active}, 0, 'dropped: released');
    my $conn = run { $pool->acquire };
    is(run { $conn->ping }, 'PONG', 'and lent again (max 1)');
    $pool->release($conn);
};

subtest 'with()' => sub {
    my $pool = pool(min => 1, max => 3);
    my $r = run { $pool->with(async sub {
        my ($redis) = @_;
        await $redis->set('with:k', 'hello');
        return await $redis->get('with:k');
    }) };
    is($r, 'hello', 'the code\'s result');
    is($pool->stats->{active}, 0, 'released after success');

    is(run { $pool->with(sub { $_[0]->get('with:k') }) }, 'hello',
        'a plain sub returning a future');
    is(run { $pool->with(sub { 42 }) }, 42, 'a plain value');
    is($pool->stats->{active}, 0, 'released');

    my $e = dies { run { $pool->with(async sub {
        my ($redis) = @_;
        await $redis->ping;
        die "intentional error\n";
    }) } };
    is($e, "intentional error\n", 'a die after an await fails the future with it');
    is($pool->stats->{active}, 0, 'released after the failure');

    $e = dies { run { $pool->with(sub { die "at once\n" }) } };
    is($e, "at once\n", 'a die before any future');
    is($pool->stats->{active}, 0, 'released');

    $e = dies { run { $pool->with(sub { $_[0]->command('NOSUCHCOMMAND') }) } };
    isa_ok($e, 'Future::IO::Redis::Error::Redis');
    is($pool->stats->{active}, 0, 'released after a failed command');

    my $gate = Future::IO::Redis::_new_future();
    my $ran;
    my $w = $pool->with(sub { $ran = 1; $gate });
    ok(wait_until { $ran }, 'the code runs');
    is($pool->stats->{active}, 1, 'with() holds its connection while its future is pending');
    $w->cancel;
    is($pool->stats->{active}, 0, 'released at once when cancelled');

    my ($outer, $inner);
    run { $pool->with(async sub {
        my ($r1) = @_;
        $outer = await $r1->client_id;
        await $pool->with(async sub { $inner = await $_[0]->client_id });
    }) };
    isnt($outer, $inner, 'nested with() gets another connection');

    my @ids;
    my @f = map { $pool->with(async sub {
        push @ids, await $_[0]->client_id;
        await $_[0]->ping;
    }) } 1 .. 3;
    run { Future->needs_all(@f) };
    is(scalar(keys %{ { map { $_ => 1 } @ids } }), 3, 'three concurrent with() on three connections');
};

subtest 'max connections respected' => sub {
    my $pool = pool(min => 0, max => 2, acquire_timeout => 10);
    my $a = run { $pool->acquire };
    my $b = run { $pool->acquire };
    my $id_a = run { $a->client_id };
    my $f3 = $pool->acquire;
    my $f4 = $pool->acquire;
    ok(wait_until { $pool->stats->{waiting} == 2 }, 'two acquires wait');
    ok(!$f3->is_ready && !$f4->is_ready, 'neither got a connection');
    is($pool->stats->{total}, 2, 'no third connection was opened');

    $pool->release($a);
    my $c = run { $f3 };
    ok(!$f4->is_ready, 'one release, one waiter served: the oldest');
    ref_is($c, $a, 'it got the connection released');
    is(run { $c->client_id }, $id_a, '...the same server connection');
    $pool->release($b);
    my $d = run { $f4 };
    is($pool->stats->{active}, 2, 'both lent');
    is($pool->stats->{total}, 2, 'still 2 connections');
    $pool->release($_) for $c, $d;
    is($pool->stats->{active}, 0, 'all back');
};

subtest 'acquire times out' => sub {
    my $pool = pool(min => 0, max => 1, acquire_timeout => 0.3);
    my $held = run { $pool->acquire };
    my $t0 = Time::HiRes::time();
    my $e = dies { run { $pool->acquire } };
    my $took = Time::HiRes::time() - $t0;
    isa_ok($e, 'Future::IO::Redis::Error::Timeout');
    like("$e", qr/acquire timed out.*exhausted: 1 in use/, 'the error describes the pool');
    ok($took >= 0.25 && $took < 5, "it waited acquire_timeout ($took s)");
    is($pool->stats->{timeouts}, 1, 'stats: timeouts');
    $pool->release($held);
};

subtest 'a cancelled acquire does not keep a connection' => sub {
    my $pool = pool(min => 0, max => 1);
    my $held = run { $pool->acquire };
    my $f = $pool->acquire;
    ok(wait_until { $pool->stats->{waiting} == 1 }, 'waiting');
    $f->cancel;
    $pool->release($held);
    ok(wait_until { my $s = $pool->stats; $s->{waiting} == 0 && $s->{active} == 0 && $s->{idle} == 1 },
        'the connection granted to the cancelled acquire went back');
    my $conn = run { $pool->acquire };
    is(run { $conn->ping }, 'PONG', 'and is lent again');
    $pool->release($conn);
};

subtest 'released inside MULTI: reset, never handed on' => sub {
    my $pool = pool(min => 0, max => 1);
    my $conn = run { $pool->acquire };
    my $id = run { $conn->client_id };
    run { $conn->del('dirty:multi', 'dirty:after') };
    is(run { $conn->command('MULTI') }, 'OK', 'MULTI');
    is(run { $conn->set('dirty:multi', 'queued') }, 'QUEUED', 'a command queued in it');
    $pool->release($conn);

    my $next = run { $pool->acquire };
    is(run { $next->client_id }, $id, 'the same connection, reset in place');
    is(run { $next->set('dirty:after', 'x') }, 'OK', 'the next user is not inside the MULTI');
    is(run { $next->exists('dirty:multi') }, 0, 'the queued command never ran');
    my $s = $pool->stats;
    is($s->{resets}, 1, 'stats: one reset');
    is($s->{destroyed}, 0, 'nothing destroyed');
    $pool->release($next);

    # The same through with(): the code dies inside its MULTI.
    my $e = dies { run { $pool->with(async sub {
        my ($r) = @_;
        await $r->command('MULTI');
        await $r->incr('dirty:counter');
        die "transaction interrupted\n";
    }) } };
    is($e, "transaction interrupted\n", 'with() failed');
    is(run { $pool->with(sub { $_[0]->incr('dirty:counter') }) }, 1,
        'the next user runs its command at once (no MULTI left open)');
};

subtest 'released after SELECT: the database restored' => sub {
    my $pool = pool(min => 0, max => 1);
    my $conn = run { $pool->acquire };
    run { $conn->select(3) };
    run { $conn->set('dirty:db', 'in-3') };
    $pool->release($conn);
    my $next = run { $pool->acquire };
    is(run { $next->get('dirty:db') }, undef, 'the next user is in database 0');
    run { $next->select(3) };
    is(run { $next->get('dirty:db') }, 'in-3', '(the key is in 3)');
    run { $next->del('dirty:db') };
    $pool->release($next);
};

subtest 'released while watching: the WATCH does not leak' => sub {
    my $pool = pool(min => 0, max => 1);
    run { $other->set('dirty:watched', 'a') };
    my $conn = run { $pool->acquire };
    is(run { $conn->watch('dirty:watched') }, 'OK', 'WATCH');
    ok($conn->watching, 'watching');
    $pool->release($conn);
    run { $other->set('dirty:watched', 'b') };    # would abort an EXEC under that WATCH

    my $next = run { $pool->acquire };
    ok(!$next->watching, 'the next user is not watching');
    my $r = run { $next->multi(sub { $_[0]->set('dirty:watched', 'c') }) };
    is($r, ['OK'], 'its transaction is not aborted by the previous user\'s WATCH');
    is(run { $other->get('dirty:watched') }, 'c', 'and ran');
    $pool->release($next);
};

subtest 'released while subscribed: the subscription ends, the connection is replaced' => sub {
    my $pool = pool(min => 0, max => 1);
    my $conn = run { $pool->acquire };
    my $id = run { $conn->client_id };
    my $sub = run { $conn->subscribe('pool:ch') };
    ok(wait_until { (run { $other->publish('pool:ch', 'hi') }) == 1 }, 'subscribed');
    is(run { $sub->next_message }->{message}, 'hi', 'a message');
    $pool->release($conn);
    ok($sub->is_closed, 'the subscription closed with the release');
    is(run { $sub->next_message }, undef, 'no more messages');
    my $next = run { $pool->acquire };
    isnt(run { $next->client_id }, $id, 'the next user gets another connection');
    is(run { $next->ping }, 'PONG', 'in command mode');
    ok(wait_until { (run { $other->publish('pool:ch', 'x') }) == 0 }, 'nobody is subscribed any more');
    $pool->release($next);
    ok($pool->stats->{destroyed} >= 1, 'stats: the subscribed connection was destroyed');
    undef $pool;
    is(run { $sub->next_message }, undef, 'the subscription outlives its pool harmlessly');
};

subtest 'commands on the pool' => sub {
    my $pool = pool(min => 0, max => 2);
    is(run { $pool->set('poolcmd:k', 'v') }, 'OK', 'SET on the pool');
    is(run { $pool->command('GET', 'poolcmd:k') }, 'v', 'command() on the pool');
    my @f = map { $pool->incr('poolcmd:n') } 1 .. 20;
    is([run { Future->needs_all(@f) }], [1 .. 20], '20 at once, in order');
    is($pool->stats->{commands}, 22, 'stats: commands');
    my $e = dies { run { $pool->command('NOSUCHCOMMAND') } };
    isa_ok($e, 'Future::IO::Redis::Error::Redis');
};

subtest 'stats' => sub {
    my $pool = pool(min => 2, max => 4);
    ok(wait_until { $pool->stats->{idle} == 2 }, 'min connections opened at once');
    my @c = map { run { $pool->acquire } } 1 .. 3;
    my $s = $pool->stats;
    is($s->{active}, 3, 'active');
    is($s->{in_use}, 3, 'in_use (aredis\'s name)');
    is($s->{total}, 3, 'total');
    is($s->{created}, 3, 'created');
    is($s->{acquires}, 3, 'acquires');
    is($s->{waiting}, 0, 'waiting');
    $pool->release($_) for @c;
    $s = $pool->stats;
    is($s->{idle}, 3, 'idle after release');
    is($s->{total}, $s->{opening} + $s->{idle} + $s->{in_use} + $s->{checking},
        'total = opening + idle + in_use + checking');
};

subtest 'no server: acquire fails with the connect error' => sub {
    my $pool = Future::IO::Redis::Pool->new(host => '127.0.0.1', port => FIORTest::_free_port(),
        min => 0, max => 2, acquire_timeout => 8);
    my $t0 = Time::HiRes::time();
    my $e = dies { run { $pool->acquire } };
    isa_ok($e, 'Future::IO::Redis::Error::Connection');
    ok(Time::HiRes::time() - $t0 < 5, 'at once, not after acquire_timeout');
    ok($pool->stats->{connect_failures} >= 1, 'stats: connect_failures');
};

subtest 'shutdown' => sub {
    my $pool = pool(min => 0, max => 2);
    my $conn = run { $pool->acquire };
    my $second = run { $pool->acquire };
    my $f = $pool->acquire;
    ok(wait_until { $pool->stats->{waiting} == 1 }, 'an acquire waits');
    run { $pool->shutdown };
    my $e = dies { run { $f } };
    isa_ok($e, 'Future::IO::Redis::Error::Disconnected');
    like(dies { run { $conn->ping } }, qr/shut down/, 'a connection still out is unusable');
    like(dies { run { $pool->acquire } }, qr/shut down/, 'acquire fails');
    like(dies { run { $pool->get('x') } }, qr/shut down/, 'pool commands fail');
    $pool->release($conn);
    pass('releasing after shutdown is harmless');
};

run { $other->flushdb };
done_testing;
