use strict;
use warnings;
use Test2::V0;
use lib 't/lib';
use FIORTest;
use Future::AsyncAwait;
use Future::IO::Redis;

# multi: MULTI, the queued commands and EXEC go out together; the result is
# EXEC's array.

my $srv = start_server();
my $r = Future::IO::Redis->new(host => '127.0.0.1', port => $srv->port);
run { $r->connect };
my $probe = Future::IO::Redis->new(host => '127.0.0.1', port => $srv->port);
run { $probe->connect };

subtest 'the reference design\'s example commits' => sub {
    run { $r->del('counter', 'k1') };
    my $results = run { $r->multi(async sub {
        my ($tx) = @_;
        $tx->set('k1', 'v1');
        $tx->incr('counter');
    }) };
    is($results, ['OK', 1], 'EXEC\'s results');
    is(run { $probe->get('k1') }, 'v1', 'committed: seen by another client');
    is(run { $probe->get('counter') }, '1', 'both commands');
};

subtest 'several commands, a plain sub, atomic' => sub {
    run { $r->set('tx:c', 100) };
    my $res = run { $r->multi(sub {
        my ($tx) = @_;
        $tx->incr('tx:c') for 1 .. 3;
        $tx->get('tx:c');
        $tx->command('HSET', 'tx:h', 'f', 'v');
    }) };
    is($res, [101, 102, 103, '103', 1], 'all results, in order');
};

subtest 'an empty transaction' => sub {
    is(run { $r->multi(async sub { }) }, [], 'nothing queued: []');
};

subtest 'EXECABORT: a command refused when queued aborts the whole' => sub {
    run { $r->set('tx:q', 'before') };
    my $e = dies { run { $r->multi(sub {
        my ($tx) = @_;
        $tx->set('tx:q', 'after');
        $tx->command('SET', 'tx:q');        # wrong number of arguments: refused at queue time
        $tx->incr('tx:n');
    }) } };
    isa_ok($e, ['Future::IO::Redis::Error::Redis'], 'the transaction fails with a Redis error');
    is($e->type, 'EXECABORT', 'EXECABORT');
    like("$e", qr/discarded/i, 'the server\'s words');
    is(run { $probe->get('tx:q') }, 'before', 'nothing was applied');
    is(run { $probe->exists('tx:n') }, 0, 'not even the commands after it');
    is(run { $r->ping }, 'PONG', 'the client is usable: not left inside MULTI');
    is(run { $r->get('tx:q') }, 'before', 'and its commands run outside a transaction');
};

subtest 'a runtime error stays in its slot; the rest is applied' => sub {
    run { $r->set('tx:str', 'text') };
    run { $r->del('tx:m') };
    my $res = run { $r->multi(sub {
        my ($tx) = @_;
        $tx->set('tx:m', 1);
        $tx->lpush('tx:str', 'x');    # WRONGTYPE when EXEC runs it
        $tx->incr('tx:m');
    }) };
    is(scalar @$res, 3, 'three results');
    is($res->[0], 'OK', 'slot 0');
    isa_ok($res->[1], ['Future::IO::Redis::Error::Redis'], 'slot 1: an error object');
    is($res->[1]->type, 'WRONGTYPE', 'WRONGTYPE');
    is($res->[2], 2, 'slot 2: applied after the error');
    is(run { $probe->get('tx:m') }, '2', 'applied (Redis does not roll back)');
};

subtest 'a callback that dies: nothing is sent' => sub {
    run { $r->del('tx:d') };
    my $f = $r->multi(sub { $_[0]->set('tx:d', 1); die "changed my mind\n" });
    ok($f->is_failed, 'multi returns a failed future (it does not die)');
    like(dies { run { $f } }, qr/changed my mind/, 'with the callback\'s error');
    my $e2 = dies { run { $r->multi(async sub { $_[0]->set('tx:d', 1); die "async too\n" }) } };
    like($e2, qr/async too/, 'an async callback\'s error too');
    is(run { $probe->exists('tx:d') }, 0, 'nothing was applied');
    is(run { $r->ping }, 'PONG', 'the client is fine');
};

subtest 'an awaiting callback' => sub {
    run { $r->set('tx:src', 7) };
    my $res = run { $r->multi(async sub {
        my ($tx) = @_;
        my $v = await $r->get('tx:src');
        $tx->set('tx:dst', $v * 2);
        $tx->get('tx:dst');
    }) };
    is($res, ['OK', '14'], 'commands queued after an await');
};

subtest 'transactions and plain commands in flight together' => sub {
    run { $r->set('tx:i', 0) };
    my @f;
    for my $i (1 .. 10) {
        push @f, $r->incr('tx:i');
        push @f, $r->multi(sub { $_[0]->incr('tx:i'); $_[0]->incr('tx:i') });
    }
    my @res = run { Future->needs_all(@f) };
    my $n = 0;
    my @want = map { $n++; my $a = $n; $n += 2; ($a, [$a + 1, $a + 2]) } 1 .. 10;
    is(\@res, \@want, 'each transaction\'s increments are consecutive: nothing got between them');
};

subtest 'HGETALL inside a transaction: the raw reply' => sub {
    run { $r->del('tx:hh') };
    my $res = run { $r->multi(sub { $_[0]->hset('tx:hh', 'a', 1); $_[0]->hgetall('tx:hh') }) };
    is($res->[0], 1, 'HSET');
    ok(ref $res->[1] eq 'HASH' || ref $res->[1] eq 'ARRAY', 'HGETALL: a map (RESP3) or a flat list (RESP2)');
};

subtest 'the transaction object directly' => sub {
    my $tx = $r->multi;
    isa_ok($tx, ['Future::IO::Redis::Transaction'], 'multi without code');
    $tx->set('tx:o', 1)->incr('tx:o');
    is($tx->count, 2, 'count');
    $tx->discard;
    is($tx->count, 0, 'discard drops what is queued');
    $tx->set('tx:o', 5);
    is(run { $tx->exec }, ['OK'], 'exec');
};

subtest 'a transaction on a client that is not connected' => sub {
    my $c = Future::IO::Redis->new(host => '127.0.0.1', port => $srv->port);
    my $e = dies { run { $c->multi(sub { $_[0]->set('x', 1) }) } };
    isa_ok($e, ['Future::IO::Redis::Error::Disconnected'], 'Disconnected');
};

done_testing;
