use strict;
use warnings;
use Test2::V0;
use lib 't/lib';
use FIORTest;
use Future::AsyncAwait;
use Future::IO::Redis;

my $srv = start_server();
my $redis = Future::IO::Redis->new(host => '127.0.0.1', port => $srv->port);
is(run { $redis->connect }, $redis, 'connect resolves to the client');
ok($redis->is_connected, 'is_connected');

is(run { $redis->ping }, 'PONG', 'PING');
is(run { $redis->set('t:k', 'hello') }, 'OK', 'SET');
is(run { $redis->get('t:k') }, 'hello', 'GET');
is(run { $redis->get('t:missing') }, undef, 'GET of a missing key is undef');
is(run { $redis->incr('t:n') }, 1, 'INCR');
is(run { $redis->command('INCRBY', 't:n', 5) }, 6, 'command()');
run { $redis->rpush('t:l', qw(a b c)) };
is(run { $redis->lrange('t:l', 0, -1) }, [qw(a b c)], 'LRANGE: an array ref');
run { $redis->hset('t:h', a => 1, b => 2) };
is(run { $redis->hgetall('t:h') }, { a => 1, b => 2 }, 'HGETALL: a hash ref');
is(run { $redis->client_setname('fior') }, 'OK', 'a subcommand as a method');
is(run { $redis->client_getname }, 'fior', 'CLIENT GETNAME');

# async/await reads as the reference design's examples do.
my $sum = run { (async sub {
    await $redis->set('t:a', 2);
    my $a = await $redis->get('t:a');
    return $a + (await $redis->incr('t:a'));
})->() };
is($sum, 5, 'async sub with await');

# Many commands in flight at once, each with its own reply.
my @f = map { my $i = $_; $redis->echo("m$i") } 1 .. 500;
my @r = run { Future->needs_all(@f) };
is(\@r, [map {"m$_"} 1 .. 500], '500 commands in flight, every reply to its own command');

# A client dropped while connected: its on_disconnect handler does not run
# on the object being destroyed (it used to, and a command from it crashed
# on the freed client).
{
    my $calls = 0;
    my $c = Future::IO::Redis->new(host => '127.0.0.1', port => $srv->port,
        on_disconnect => sub { $calls++; $_[0]->ping });
    run { $c->connect };
    undef $c;
    is($calls, 0, 'no on_disconnect on an object being destroyed');
    is(run { $redis->ping }, 'PONG', 'and the process goes on');
}

run { $redis->flushdb };
$redis->disconnect;
ok(!$redis->is_connected, 'disconnect');
done_testing;
