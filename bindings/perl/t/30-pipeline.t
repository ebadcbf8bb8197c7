use strict;
use warnings;
use Test2::V0;
use lib 't/lib';
use FIORTest;
use Future::AsyncAwait;
use Future::IO::Redis;

# Pipelines: commands queued, sent in one write, replies in order; an error
# reply stays in its slot.

my $srv = start_server();
my $r = Future::IO::Redis->new(host => '127.0.0.1', port => $srv->port);
run { $r->connect };

subtest 'the reference design\'s example' => sub {
    run { $r->del('counter') };
    my $pipeline = $r->pipeline;
    $pipeline->set('k1', 'v1');
    $pipeline->incr('counter');
    is($pipeline->count, 2, 'count: 2 queued');
    my $results = run { $pipeline->execute };
    is($results, ['OK', 1], 'results in order');
    is($pipeline->count, 0, 'empty after execute');
    is(run { $r->get('k1') }, 'v1', 'the commands ran');
};

subtest 'a pipeline of 1,000' => sub {
    run { $r->del('p:n') };
    my $p = $r->pipeline;
    $p->set("p:$_", "v$_") for 1 .. 500;
    $p->incr('p:n') for 1 .. 500;
    is($p->count, 1000, '1,000 queued');
    my $out = $r->stats->{bytes_out};
    my $res = run { $p->execute };
    is(scalar @$res, 1000, '1,000 results');
    is([@$res[0 .. 499]], [('OK') x 500], 'the SETs');
    is([@$res[500 .. 999]], [1 .. 500], 'the INCRs, in order');
    is(run { $r->mget(map {"p:$_"} 1, 250, 500) }, ['v1', 'v250', 'v500'], 'the values are there');
    ok($r->stats->{bytes_out} > $out, 'sent');
};

subtest 'errors stay in their slots' => sub {
    run { $r->set('p:str', 'hello') };
    my $res = run { $r->pipeline->set('p:a', 1)->lpush('p:str', 'x')->incr('p:a')->command('NOSUCH')
        ->hget('p:str', 'f')->get('p:a')->execute };
    is(scalar @$res, 6, 'six results');
    is($res->[0], 'OK', 'slot 0: OK');
    isa_ok($res->[1], ['Future::IO::Redis::Error::Redis'], 'slot 1: an error object');
    is($res->[1]->type, 'WRONGTYPE', 'WRONGTYPE');
    like("$res->[1]", qr/WRONGTYPE/, 'it stringifies to the message');
    is($res->[2], 2, 'slot 2: the pipeline went on');
    isa_ok($res->[3], ['Future::IO::Redis::Error::Redis'], 'slot 3: unknown command');
    is($res->[3]->type, 'ERR', 'ERR');
    is($res->[4]->type, 'WRONGTYPE', 'slot 4: WRONGTYPE');
    is($res->[5], '2', 'slot 5');
    my @errors = grep { ref $res->[$_] } 0 .. $#$res;
    is(\@errors, [1, 3, 4], 'only the failed slots hold error objects');

    my $ns = run { $r->pipeline->set('p:x', 1)->command('EVALSHA', 'a' x 40, 0)->get('p:x')->execute };
    is($ns->[1]->type, 'NOSCRIPT', 'NOSCRIPT in its slot');
    is($ns->[2], '1', 'and after it');
};

subtest 'an empty pipeline' => sub {
    my $p = $r->pipeline;
    is($p->count, 0, 'nothing queued');
    is(run { $p->execute }, [], 'execute: an empty array ref');
};

subtest 'chaining, and using it again' => sub {
    my $p = $r->pipeline;
    ref_is($p->set('c:1', 'a'), $p, 'a queued command returns the pipeline');
    my $res = run { $p->set('c:2', 'b')->mget('c:1', 'c:2')->execute };
    is($res, ['OK', 'OK', ['a', 'b']], 'chained commands; an array reply nested');
    $p->get('c:1');
    is(run { $p->execute }, ['a'], 'the same pipeline again');
    is(run { $r->pipeline->hset('c:h', 'f', 'v')->hgetall('c:h')->execute }->[0], 1,
        'HSET in a pipeline');
};

subtest 'pipelines and commands in flight together' => sub {
    my @f;
    for my $i (1 .. 20) {
        push @f, $r->echo("solo$i");
        push @f, $r->pipeline->echo("p$i-a")->echo("p$i-b")->execute;
    }
    my @res = run { Future->needs_all(@f) };
    is(\@res, [map { ("solo$_", ["p$_-a", "p$_-b"]) } 1 .. 20], 'each gets its own replies');
};

subtest 'async/await' => sub {
    my $res = run { (async sub {
        my $p = $r->pipeline;
        $p->set('aw:1', 10);
        $p->incrby('aw:1', 5);
        my $res = await $p->execute;
        return [@$res, await $r->get('aw:1')];
    })->() };
    is($res, ['OK', 15, '15'], 'awaited');
};

subtest 'a pipeline on a client that is not connected' => sub {
    my $c = Future::IO::Redis->new(host => '127.0.0.1', port => $srv->port);
    my $e = dies { run { $c->pipeline->set('x', 1)->execute } };
    isa_ok($e, ['Future::IO::Redis::Error::Disconnected'], 'fails with Disconnected');
    my $bad = dies { run { Future::IO::Redis::Pipeline->new(redis => $r)->command()->execute } };
    isa_ok($bad, ['Future::IO::Redis::Error'], 'an empty command in a pipeline: an error object');
};

subtest 'a command that cannot be queued fails execute, not the call' => sub {
    run { $r->del('qe:a', 'qe:b') };
    my $plain = dies { run { $r->set('qe:b', undef) } };
    my $p = $r->pipeline;
    my $back = $p->set('qe:a', 1)->set('qe:b', undef)->get('qe:a');
    ref_is($back, $p, 'a bad argument does not die at the call; calls still chain');
    is($p->count, 3, 'count: every command queued');
    my $e = dies { run { $p->execute } };
    isa_ok($e, ['Future::IO::Redis::Error'], 'execute fails with an error object');
    is(ref $e, ref $plain, 'the class a plain command dies with');
    is($e->code, 'AREDIS_ERR_INVALID', 'AREDIS_ERR_INVALID');
    is($e->message, $plain->message, 'the same message');
    like($e->message, qr/argument 3 is undef/, 'it names the argument (the words counted)');
    is($p->count, 0, 'the batch is discarded');
    is(run { $r->exists('qe:a') }, 0, 'nothing of it was sent');

    my $w = dies { run { $p->command('SET', 'qe:a', "\x{263A}")->execute } };
    like($w->message, qr/wide characters/, 'wide characters: the same');
    is(run { $p->set('qe:a', "\x{e9}")->get('qe:a')->execute }, ['OK', "\x{e9}"],
        'reused after a failed execute; a Latin-1 string goes as its bytes');

    my $u = dies { run { $p->ping->command('SUBSCRIBE', 'qe:c')->command('AUTH', 'x')->execute } };
    is($u->code, 'AREDIS_ERR_UNSUPPORTED', 'a command aredis refuses in a pipeline: the first error');
    is(run { $p->ping->execute }, ['PONG'], 'and the pipeline works again');
};

subtest 'a pipeline used again after each kind of execute' => sub {
    my $p = $r->pipeline;
    is(run { $p->echo('a')->execute }, ['a'], 'first batch');
    is(run { $p->execute }, [], 'an empty one');
    is(run { $p->echo('b')->echo('c')->execute }, ['b', 'c'], 'third batch');
    my $c = Future::IO::Redis->new(host => '127.0.0.1', port => $srv->port);
    my $q = $c->pipeline->echo('x');
    isa_ok(dies { run { $q->execute } }, ['Future::IO::Redis::Error::Disconnected'],
        'refused (not connected)');
    is($q->count, 0, 'the batch is gone');
    run { $c->connect };
    is(run { $q->echo('y')->execute }, ['y'], 'the same pipeline once connected');
};

subtest 'a pipeline and its client freed in either order' => sub {
    {
        my $c = Future::IO::Redis->new(host => '127.0.0.1', port => $srv->port);
        run { $c->connect };
        my $p = $c->pipeline->set('fr:1', 'a');
        undef $p;    # the pipeline first: its queue is dropped
        is(run { $c->get('fr:1') }, undef, 'a pipeline freed unexecuted sends nothing');
        my $f = $c->pipeline->set('fr:1', 'b')->get('fr:1')->execute;
        is(run { $f }, ['OK', 'b'], 'a pipeline freed while its execute is under way: it goes on');
    }
    {
        my $c = Future::IO::Redis->new(host => '127.0.0.1', port => $srv->port);
        run { $c->connect };
        my $p = $c->pipeline->set('fr:2', 'a');
        $c->DESTROY;    # the client first (its aredis client is freed)
        my $e = dies { run { $p->get('fr:2')->execute } };
        isa_ok($e, ['Future::IO::Redis::Error::Disconnected'], 'then execute fails: Disconnected');
        like($e->message, qr/client of this pipeline is gone/, 'saying why');
        is(dies { run { $p->ping->execute } }->code, 'AREDIS_ERR_CLOSED', 'and again');
    }
    # Global destruction frees in any order: pipelines with commands queued
    # and clients, in a child perl.
    my $code = 'use Future::IO::Redis; our $r = Future::IO::Redis->new(host => "127.0.0.1", port => '
        . $srv->port . '); our @p = map { $r->pipeline->set("gd:$_", 1)->get("gd:$_") } 1 .. 5; '
        . 'our $r2 = Future::IO::Redis->new(host => "127.0.0.1", port => ' . $srv->port
        . '); our $p2 = $r2->pipeline->ping; $r2->{loop_self} = $p2; print "ok\n";';
    my $out = `$^X @{[ map {"-I$_"} @INC ]} -e '$code' 2>&1`;
    is($?, 0, 'global destruction: a clean exit');
    is($out, "ok\n", 'and nothing said');
};

subtest 'a pipeline of a pool connection given back fails' => sub {
    require Future::IO::Redis::Pool;
    my $pool = Future::IO::Redis::Pool->new(host => '127.0.0.1', port => $srv->port, min => 0);
    my $conn = run { $pool->acquire };
    my $p = $conn->pipeline;
    is(run { $p->echo('in')->execute }, ['in'], 'on the loan');
    $p->echo('queued');
    $pool->release($conn);
    my $e = dies { run { $p->execute } };
    isa_ok($e, ['Future::IO::Redis::Error::Disconnected'], 'after the release: Disconnected');
    isa_ok(dies { run { $p->echo('after')->execute } }, ['Future::IO::Redis::Error::Disconnected'],
        'queued after the release: the same');
    undef $p;
    $pool->shutdown;
};

subtest 'pipelines and WATCH' => sub {
    run { $r->set('pw:k', 1) };
    my $p = $r->pipeline;
    $p->get('pw:k')->incr('pw:n');    # begun before the WATCH
    run { $r->watch('pw:k') };
    my $e = dies { run { $p->execute } };
    isa_ok($e, ['Future::IO::Redis::Error'], 'executed under the WATCH: it fails');
    like($e->message, qr/queued before the client began watching/, 'saying why');
    is($p->count, 0, 'the batch is discarded');
    ok($r->watching, 'the watch goes on');
    is(run { $p->get('pw:k')->exists('pw:k')->execute }, ['1', 1],
        'queued again under the WATCH: through it');

    $p->get('pw:k')->command('NOSUCH')->echo('w');    # begun under the WATCH
    is(run { $r->unwatch }, 'OK', 'UNWATCH');
    my $res = run { $p->execute };
    is([$res->[0], $res->[2]], ['1', 'w'], 'executed after it: as a pipeline of the client');
    isa_ok($res->[1], ['Future::IO::Redis::Error::Redis'], 'an error reply in its slot');
    is(run { $p->echo('plain')->execute }, ['plain'], 'then as before');

    run { $r->watch('pw:k') };
    my $u = dies { run { $p->set('pw:k', undef)->execute } };
    is($u->code, 'AREDIS_ERR_INVALID', 'under the WATCH an undef argument fails execute too');
    is(run { $r->multi(sub { $_[0]->set('pw:k', 2) }) }, ['OK'], 'the watch went on to its EXEC');
};

subtest 'the server goes away under a pipeline' => sub {
    my $s2 = start_server();
    my $c = Future::IO::Redis->new(host => '127.0.0.1', port => $s2->port);
    run { $c->connect };
    my $f = $c->pipeline->set('x', 1)->command('DEBUG', 'SLEEP', 5)->get('x')->execute;
    my $out = $c->stats->{bytes_out};
    ok(wait_until { $c->stats->{bytes_out} > $out }, 'sent');
    $s2->kill;
    my $e = dies { run { $f } };
    isa_ok($e, ['Future::IO::Redis::Error::Connection'], 'the whole pipeline fails with a Connection error');
};

done_testing;
