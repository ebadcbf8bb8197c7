use strict;
use warnings;
use Test2::V0;
use lib 't/lib';
use FIORTest;
use Future::IO::Redis;

# Every Redis command is a method: the families, the reply shapes, and a key
# prefix.

my $srv = start_server();
my $r = Future::IO::Redis->new(host => '127.0.0.1', port => $srv->port);
run { $r->connect };

sub sorted { [sort @{ $_[0] }] }

subtest 'strings' => sub {
    is(run { $r->set('s:k', 'value') }, 'OK', 'SET: OK');
    is(run { $r->get('s:k') }, 'value', 'GET');
    is(run { $r->get('s:none') }, undef, 'GET of a missing key: undef');
    is(run { $r->set('s:k', 'other', 'NX') }, undef, 'SET NX on an existing key: undef');
    is(run { $r->set('s:e', 'x', 'EX', 100) }, 'OK', 'SET EX');
    ok(run { $r->ttl('s:e') } > 90, 'TTL');
    is(run { $r->incr('s:n') }, 1, 'INCR');
    is(run { $r->incrby('s:n', 41) }, 42, 'INCRBY');
    is(run { $r->decr('s:n') }, 41, 'DECR');
    is(run { $r->incrbyfloat('s:f', '1.5') }, '1.5', 'INCRBYFLOAT (a string)');
    is(run { $r->append('s:k', '!') }, 6, 'APPEND: the new length');
    is(run { $r->strlen('s:k') }, 6, 'STRLEN');
    is(run { $r->getrange('s:k', 0, 1) }, 'va', 'GETRANGE');
    is(run { $r->mset('s:a', 1, 's:b', 2) }, 'OK', 'MSET');
    is(run { $r->mget('s:a', 's:b', 's:none') }, [1, 2, undef], 'MGET: an array ref, undef for a miss');
    is(run { $r->getdel('s:a') }, 1, 'GETDEL');
    is(run { $r->setnx('s:b', 9) }, 0, 'SETNX: 0 on an existing key');
    my $e = dies { run { $r->incr('s:k') } };
    isa_ok($e, ['Future::IO::Redis::Error::Redis'], 'INCR of a string: a Redis error');
    is($e->type, 'ERR', 'type ERR');
    like($e->message, qr/not an integer/, 'the server\'s message');
    is(run { $r->get('s:k') }, 'value!', 'the connection goes on after an error reply');
};

subtest 'hashes' => sub {
    is(run { $r->hset('h:1', 'f1', 'v1', 'f2', 'v2') }, 2, 'HSET: fields added');
    is(run { $r->hget('h:1', 'f1') }, 'v1', 'HGET');
    is(run { $r->hget('h:1', 'nope') }, undef, 'HGET of a missing field');
    is(run { $r->hgetall('h:1') }, { f1 => 'v1', f2 => 'v2' }, 'HGETALL: a hash ref');
    is(run { $r->hgetall('h:none') }, {}, 'HGETALL of a missing key: an empty hash ref');
    is(run { $r->hmget('h:1', 'f2', 'f1', 'x') }, ['v2', 'v1', undef], 'HMGET');
    is(run { $r->hexists('h:1', 'f1') }, 1, 'HEXISTS');
    is(run { $r->hlen('h:1') }, 2, 'HLEN');
    is(sorted(run { $r->hkeys('h:1') }), ['f1', 'f2'], 'HKEYS');
    is(sorted(run { $r->hvals('h:1') }), ['v1', 'v2'], 'HVALS');
    is(run { $r->hincrby('h:1', 'n', 5) }, 5, 'HINCRBY');
    is(run { $r->hdel('h:1', 'f1', 'n') }, 2, 'HDEL');
    my $e = dies { run { $r->hget('s:k', 'f') } };
    isa_ok($e, ['Future::IO::Redis::Error::Redis'], 'HGET on a string');
    is($e->type, 'WRONGTYPE', 'WRONGTYPE');
    ok(!$e->is_retryable, 'not retryable');
};

subtest 'lists' => sub {
    is(run { $r->rpush('l:1', 'a', 'b', 'c') }, 3, 'RPUSH');
    is(run { $r->lpush('l:1', 'z') }, 4, 'LPUSH');
    is(run { $r->lrange('l:1', 0, -1) }, ['z', 'a', 'b', 'c'], 'LRANGE');
    is(run { $r->llen('l:1') }, 4, 'LLEN');
    is(run { $r->lindex('l:1', 1) }, 'a', 'LINDEX');
    is(run { $r->lpop('l:1') }, 'z', 'LPOP');
    is(run { $r->rpop('l:1') }, 'c', 'RPOP');
    is(run { $r->lpop('l:1', 5) }, ['a', 'b'], 'LPOP with a count: an array ref');
    is(run { $r->lpop('l:1') }, undef, 'LPOP of an empty list: undef');
    is(run { $r->lrange('l:none', 0, -1) }, [], 'LRANGE of a missing key: []');
    run { $r->rpush('l:2', 'x') };
    is(run { $r->blpop('l:2', 1) }, ['l:2', 'x'], 'BLPOP: [key, element]');
    is(run { $r->lmove('l:none', 'l:3', 'LEFT', 'RIGHT') }, undef, 'LMOVE from nothing');
};

subtest 'sets' => sub {
    is(run { $r->sadd('set:1', 'a', 'b', 'c', 'a') }, 3, 'SADD: new members');
    is(sorted(run { $r->smembers('set:1') }), ['a', 'b', 'c'], 'SMEMBERS: an array ref');
    is(run { $r->sismember('set:1', 'b') }, 1, 'SISMEMBER: 1');
    is(run { $r->sismember('set:1', 'q') }, 0, 'SISMEMBER: 0');
    is(run { $r->smismember('set:1', 'a', 'q') }, [1, 0], 'SMISMEMBER');
    is(run { $r->scard('set:1') }, 3, 'SCARD');
    run { $r->sadd('set:2', 'b', 'c', 'd') };
    is(sorted(run { $r->sinter('set:1', 'set:2') }), ['b', 'c'], 'SINTER');
    is(sorted(run { $r->sunion('set:1', 'set:2') }), [qw(a b c d)], 'SUNION');
    is(sorted(run { $r->sdiff('set:1', 'set:2') }), ['a'], 'SDIFF');
    is(run { $r->srem('set:1', 'a', 'q') }, 1, 'SREM');
};

subtest 'sorted sets' => sub {
    is(run { $r->zadd('z:1', 1, 'one', 2, 'two', 3, 'three') }, 3, 'ZADD');
    is(run { $r->zrange('z:1', 0, -1) }, ['one', 'two', 'three'], 'ZRANGE');
    is(run { $r->zrevrange('z:1', 0, 0) }, ['three'], 'ZREVRANGE');
    is(run { $r->zrank('z:1', 'three') }, 2, 'ZRANK');
    is(run { $r->zcard('z:1') }, 3, 'ZCARD');
    is(run { $r->zcount('z:1', 2, '+inf') }, 2, 'ZCOUNT');
    is(run { $r->zscore('z:1', 'two') }, 2, 'ZSCORE (2 either way: "2" or 2.0)');
    is(run { $r->zincrby('z:1', 10, 'one') }, 11, 'ZINCRBY');
    is(run { $r->zrangebyscore('z:1', 2, 3) }, ['two', 'three'], 'ZRANGEBYSCORE');
    is(run { $r->zrem('z:1', 'two') }, 1, 'ZREM');
    is(run { $r->zscore('z:1', 'two') }, undef, 'ZSCORE of a missing member: undef');

    # The shapes of the replies with scores depend on the protocol: RESP2
    # (the reference design's) is a flat list of strings; RESP3 pairs.
    my $r2 = Future::IO::Redis->new(host => '127.0.0.1', port => $srv->port, protocol => 2);
    run { $r2->connect };
    is(run { $r2->zrange('z:1', 0, -1, 'WITHSCORES') }, ['three', '3', 'one', '11'],
        'protocol => 2: ZRANGE WITHSCORES is flat, scores as strings (the reference design)');
    is(run { $r2->zscore('z:1', 'one') }, '11', 'protocol => 2: ZSCORE a string');
    my $r3 = Future::IO::Redis->new(host => '127.0.0.1', port => $srv->port, protocol => 3);
    run { $r3->connect };
    is(run { $r3->zrange('z:1', 0, -1, 'WITHSCORES') }, [['three', 3], ['one', 11]],
        'protocol => 3: ZRANGE WITHSCORES is [member, score] pairs, scores as numbers');
};

subtest 'keys' => sub {
    run { $r->set('k:1', 'a') };
    run { $r->set('k:2', 'b') };
    is(run { $r->exists('k:1', 'k:2', 'k:none') }, 2, 'EXISTS: how many');
    is(run { $r->type('k:1') }, 'string', 'TYPE');
    is(run { $r->expire('k:1', 300) }, 1, 'EXPIRE');
    ok(run { $r->ttl('k:1') } > 290, 'TTL');
    is(run { $r->persist('k:1') }, 1, 'PERSIST');
    is(run { $r->ttl('k:1') }, -1, 'TTL -1 after PERSIST');
    is(sorted(run { $r->keys('k:*') }), ['k:1', 'k:2'], 'KEYS');
    is(run { $r->rename('k:2', 'k:3') }, 'OK', 'RENAME');
    is(run { $r->del('k:1', 'k:3', 'k:none') }, 2, 'DEL: how many');
    is(run { $r->exists('k:1') }, 0, 'gone');
    ok(run { $r->dbsize } > 0, 'DBSIZE');
};

subtest 'server and connection commands, and subcommands as methods' => sub {
    is(run { $r->ping }, 'PONG', 'PING');
    is(run { $r->echo('hi') }, 'hi', 'ECHO');
    like(run { $r->info('server') }, qr/redis_version:/, 'INFO');
    is(ref run { $r->time }, 'ARRAY', 'TIME');
    is(run { $r->config_get('maxmemory-policy') }, in_set(
        ['maxmemory-policy', 'noeviction'], { 'maxmemory-policy' => 'noeviction' }), 'CONFIG GET (config_get)');
    is(run { $r->command('CONFIG', 'GET', 'maxmemory-policy') },
        run { $r->config_get('maxmemory-policy') }, 'command() with the words gives the same');
    like(run { $r->client_id }, qr/^\d+$/, 'CLIENT ID (client_id)');
    is(run { $r->object_encoding('s:n') }, 'int', 'OBJECT ENCODING (object_encoding)');
    ok(Future::IO::Redis->can('cluster_info'), 'every command of the table is a method');
    like(dies { $r->no_such_command }, qr/no_such_command/, 'an unknown method is still an error');
};

subtest 'a command the server does not know' => sub {
    my $e = dies { run { $r->command('NOSUCHCMD', 'x') } };
    isa_ok($e, ['Future::IO::Redis::Error::Redis'], 'a Redis error');
    like("$e", qr/unknown command/i, 'unknown command');
    like(dies { run { $r->command() } }, qr/no command/, 'command() with nothing: an error');
    like(dies { run { $r->set('k', undef) } }, qr/undef/, 'an undef argument: an error, nothing sent');
};

subtest 'prefix => "app:"' => sub {
    my $p = Future::IO::Redis->new(host => '127.0.0.1', port => $srv->port, prefix => 'app:');
    run { $p->connect };
    run { $r->flushdb };
    is(run { $p->set('k', 'k') }, 'OK', 'SET k through the prefixed client');
    is(run { $r->get('app:k') }, 'k', 'the server has app:k (seen by a second client)...');
    is(run { $r->get('k') }, undef, '...and no k');
    is(run { $r->get('app:k') }, 'k', 'the value is not prefixed');
    is(run { $p->get('k') }, 'k', 'GET k through the prefix');

    run { $p->mset('a', 'v:a', 'b', 'v:b') };
    is(run { $r->mget('app:a', 'app:b') }, ['v:a', 'v:b'], 'MSET: keys prefixed, values not');
    is(run { $p->mget('a', 'b') }, ['v:a', 'v:b'], 'MGET through the prefix');

    run { $p->hset('h', 'field', 'val') };
    is(run { $r->hgetall('app:h') }, { field => 'val' }, 'HSET: the key prefixed, field and value not');
    run { $p->rpush('l', 'x') };
    is(run { $r->lrange('app:l', 0, -1) }, ['x'], 'RPUSH');
    run { $p->sadd('s', 'm') };
    is(run { $r->smembers('app:s') }, ['m'], 'SADD');
    run { $p->zadd('z', 1, 'm') };
    is(run { $r->zrange('app:z', 0, -1) }, ['m'], 'ZADD');
    is(run { $p->del('a', 'b') }, 2, 'DEL through the prefix');
    is(run { $r->exists('app:a', 'app:b') }, 0, 'deleted the prefixed keys');

    run { $r->set('other', 'x') };
    is(sorted(run { $p->keys('*') }), [qw(h k l s z)], 'KEYS: only the namespace, names without the prefix');
    is(run { $p->exists('other') }, 0, 'a key outside the namespace is not seen');
    is(run { $p->command('GET', 'k') }, 'k', 'command() is prefixed too');

    my $pl = run { $p->pipeline->set('pk', 1)->incr('pk')->execute };
    is($pl, ['OK', 2], 'a pipeline through the prefix');
    is(run { $r->get('app:pk') }, 2, 'its keys prefixed');
    my $tx = run { $p->multi(sub { $_[0]->set('tk', 't'); $_[0]->get('tk') }) };
    is($tx, ['OK', 't'], 'a transaction through the prefix');
    is(run { $r->get('app:tk') }, 't', 'its keys prefixed');

    my $e = dies { run { $p->command('NOSUCHCMD', 'x') } };
    isa_ok($e, ['Future::IO::Redis::Error'], 'a command whose keys are unknown is refused, not sent unprefixed');
    like("$e", qr/prefix/, 'the message says why');
};

done_testing;
