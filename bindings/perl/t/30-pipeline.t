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
