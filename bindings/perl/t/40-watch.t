use strict;
use warnings;
use Test2::V0;
use lib 't/lib';
use FIORTest;
use Future::AsyncAwait;
use Future::IO::Redis;

my $srv = start_server();
my @conn = (host => '127.0.0.1', port => $srv->port);
my $redis = Future::IO::Redis->new(@conn);
my $other = Future::IO::Redis->new(@conn);    # changes watched keys
run { $redis->connect };
run { $other->connect };

subtest 'watch_multi commits when the keys are untouched' => sub {
    run { $redis->set('w:balance', 100) };
    my $seen;
    my $r = run { $redis->watch_multi(['w:balance'], async sub {
        my ($tx, $values) = @_;
        $seen = {%$values};
        ok($redis->watching, 'watching inside the callback');
        $tx->decrby('w:balance', 10);
        $tx->get('w:balance');
    }) };
    is($seen, { 'w:balance' => 100 }, 'the callback got the watched values');
    is($r, [90, '90'], 'the results of the queued commands');
    ok(!$redis->watching, 'not watching after the EXEC');
    is(run { $other->get('w:balance') }, '90', 'applied');
};

subtest 'several keys, one missing' => sub {
    run { $redis->mset('w:a', 1, 'w:b', 2) };
    run { $redis->del('w:none') };
    my $r = run { $redis->watch_multi(['w:a', 'w:b', 'w:none'], sub {
        my ($tx, $v) = @_;
        is($v, { 'w:a' => 1, 'w:b' => 2, 'w:none' => undef }, 'every value, undef for a missing key');
        $tx->incr('w:a');
        $tx->incr('w:b');
        return;    # a plain sub: no future
    }) };
    is($r, [2, 3], 'both incremented');
};

subtest 'watch_multi returns undef when a watched key changed' => sub {
    run { $redis->set('w:key', 'original') };
    my $r = run { $redis->watch_multi(['w:key'], async sub {
        my ($tx, $v) = @_;
        is($v->{'w:key'}, 'original', 'read under the WATCH');
        # Another client changes the key between the WATCH and the EXEC.
        await $other->set('w:key', 'raced');
        $tx->set('w:key', 'from_tx');
    }) };
    is($r, undef, 'aborted: undef');
    is(run { $redis->get('w:key') }, 'raced', 'the other client\'s value stands');
    ok(!$redis->watching, 'not watching after the aborted EXEC');
};

subtest 'retry until it commits' => sub {
    run { $redis->set('w:counter', 0) };
    my ($attempts, $r) = (0);
    while ($attempts < 5) {
        $attempts++;
        $r = run { $redis->watch_multi(['w:counter'], async sub {
            my ($tx, $v) = @_;
            await $other->incr('w:counter') if $attempts == 1;
            $tx->set('w:counter', $v->{'w:counter'} + 10);
        }) };
        last if defined $r;
    }
    is($attempts, 2, 'the first attempt aborted, the second committed');
    is(run { $redis->get('w:counter') }, '11', 'both changes are in');
};

subtest 'unwatch' => sub {
    run { $redis->set('w:u', 'value') };
    is(run { $redis->watch('w:u') }, 'OK', 'WATCH');
    ok($redis->watching, 'watching');
    is(run { $redis->unwatch }, 'OK', 'UNWATCH');
    ok(!$redis->watching, 'not watching');
    run { $other->set('w:u', 'changed') };
    my $r = run { $redis->multi(sub { $_[0]->get('w:u') }) };
    is($r, ['changed'], 'a change after UNWATCH does not abort the transaction');
    is(run { $redis->unwatch }, 'OK', 'UNWATCH when not watching');
};

subtest 'watch, read, multi by hand' => sub {
    run { $redis->set('w:m', 5) };
    run { $redis->watch('w:m') };
    my $v = run { $redis->get('w:m') };
    is($v, '5', 'a read while watching is answered (it goes ahead of the reservation)');
    is(run { $redis->set('w:empty', '') }, 'OK', 'an empty argument while watching');
    is(run { $redis->strlen('w:empty') }, 0, '...is an empty string');
    is(dies { run { $redis->command('DEL', map {"w:x$_"} 1 .. 40) } }->code, 'AREDIS_ERR_INVALID',
        'a command of more than 32 words while watching is refused');
    ok($redis->watching, '...and the watch goes on');
    my $p = $redis->pipeline;
    $p->get('w:m')->exists('w:m');
    is(run { $p->execute }, ['5', 1], 'a pipeline while watching is answered');
    $p->get('w:m')->command('NOSUCHCOMMAND')->get('w:m');
    my $pr = run { $p->execute };
    is([$pr->[0], $pr->[2]], ['5', '5'], 'a pipeline with a bad command: the others\' replies');
    isa_ok($pr->[1], 'Future::IO::Redis::Error::Redis');
    is(run { $redis->multi(sub { $_[0]->set('w:m', $v * 2) }) }, ['OK'],
        'multi() under the WATCH commits when untouched');
    ok(!$redis->watching, 'the EXEC ended the watch');
    is(run { $redis->get('w:m') }, '10', 'applied');

    run { $redis->watch('w:m') };
    run { $other->set('w:m', 1) };
    is(run { $redis->multi(sub { $_[0]->set('w:m', 99) }) }, undef,
        'multi() under the WATCH aborts when the key changed');
    is(run { $redis->get('w:m') }, '1', 'nothing ran');

    # MULTI / EXEC sent as commands, as the reference design's manual form.
    run { $redis->watch('w:m') };
    is(run { $redis->command('MULTI') }, 'OK', 'MULTI');
    is(run { $redis->incr('w:m') }, 'QUEUED', 'a command after it is queued');
    is(run { $redis->exec }, [2], 'EXEC runs it under the WATCH');
    run { $redis->watch('w:m') };
    run { $redis->command('MULTI') };
    run { $redis->incr('w:m') };
    run { $other->incr('w:m') };
    is(run { $redis->exec }, undef, 'EXEC after a change: undef');
    run { $redis->watch('w:m') };
    run { $redis->command('MULTI') };
    run { $redis->incr('w:m') };
    is(run { $redis->discard }, 'OK', 'DISCARD');
    ok(!$redis->watching, 'DISCARD ends the watch (as on the server)');
    is(run { $redis->get('w:m') }, '3', 'nothing queued ran');
};

subtest 'the callback fails: the watch ends, the client goes on' => sub {
    my $e = dies { run { $redis->watch_multi(['w:f'], async sub {
        my ($tx) = @_;
        await $redis->get('w:f');
        die "callback failed\n";
    }) } };
    is($e, "callback failed\n", 'the future fails with the error');
    ok(!$redis->watching, 'not watching');
    # Had the reservation been left, this would wait behind it until timed out.
    is(run { $redis->set('w:f', 'after') }, 'OK', 'commands run');
    my $p = $redis->pipeline;
    $p->get('w:f');
    is(run { $p->execute }, ['after'], 'pipelines run');

    $e = dies { run { $redis->watch_multi(['w:f'], sub { die "at once\n" }) } };
    is($e, "at once\n", 'a die before any future');
    ok(!$redis->watching, 'not watching');

    $e = dies { run { $redis->watch_multi(['w:f'], sub { $_[0]->command('SUBSCRIBE', 'c') }) } };
    is($e->code, 'AREDIS_ERR_UNSUPPORTED', 'a command a transaction refuses fails the exec');
    ok(!$redis->watching, 'not watching');
    is(run { $redis->get('w:f') }, 'after', 'commands run');

    my $r = run { $redis->watch_multi(['w:f'], sub { return }) };
    is($r, [], 'nothing queued: []');
    ok(!$redis->watching, 'not watching');
    like(dies { $redis->watch_multi('w:f', sub { }) }, qr/array ref of keys/, 'keys must be an array ref');
    is(dies { run { $redis->watch } }->code, 'AREDIS_ERR_INVALID', 'watch() needs keys');
};

subtest 'keys are prefixed as every command\'s' => sub {
    my $p = Future::IO::Redis->new(@conn, prefix => 'pfx:');
    run { $p->connect };
    run { $other->set('pfx:w', 7) };
    my $r = run { $p->watch_multi(['w'], sub {
        my ($tx, $v) = @_;
        is($v, { w => 7 }, 'values under the names given');
        $tx->incr('w');
    }) };
    is($r, [8], 'committed');
    is(run { $other->get('pfx:w') }, '8', 'on the prefixed key');
    $r = run { $p->watch_multi(['w'], async sub {
        my ($tx) = @_;
        await $other->set('pfx:w', 0);
        $tx->incr('w');
    }) };
    is($r, undef, 'the WATCH is on the prefixed key');
};

subtest 'the connection lost after WATCH: the EXEC fails, never runs unwatched' => sub {
    my $connects = 0;
    my $r = Future::IO::Redis->new(@conn, reconnect => 1, reconnect_delay => 0.05,
        on_connect => sub { $connects++ });
    run { $r->connect };
    run { $r->set('w:lost', 1) };
    run { $r->watch('w:lost') };
    my $id = run { $r->client_id };
    run { $other->client_kill('ID', $id) };
    ok(wait_until { $connects == 2 }, 'reconnected');
    run { $other->set('w:lost', 2) };
    my $e = dies { run { $r->multi(sub { $_[0]->set('w:lost', 'tx') }) } };
    like("$e", qr/connection lost after WATCH/, 'the EXEC is refused');
    ok(!$r->watching, 'not watching');
    is(run { $other->get('w:lost') }, '2', 'nothing ran');
    is(run { $r->watch_multi(['w:lost'], sub { $_[0]->set('w:lost', 'tx') }) }, ['OK'],
        'watching again works');
};

subtest 'a watching client freed' => sub {
    {
        my $w = Future::IO::Redis->new(@conn);
        run { $w->connect };
        run { $w->watch('w:freed') };
    }
    pass('freed while watching');
    is(run { $redis->ping }, 'PONG', 'others go on');
};

run { $redis->flushdb };
done_testing;
