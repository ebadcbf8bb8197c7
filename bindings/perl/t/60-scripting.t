use strict;
use warnings;
use Test2::V0;
use lib 't/lib';
use FIORTest;
use Future::AsyncAwait;
use Digest::SHA ();
use Future::IO::Redis;

# Scripts: EVALSHA first, EVAL once when the server lacks the script.

my $srv = start_server();
my $r = Future::IO::Redis->new(host => '127.0.0.1', port => $srv->port);
run { $r->connect };

# How many times the server ran a command (INFO commandstats).
sub calls {
    my ($cmd) = @_;
    my $info = run { $r->info('commandstats') };
    return $info =~ /^cmdstat_\Q$cmd\E:calls=(\d+)/m ? $1 : 0;
}

subtest 'the reference design\'s example' => sub {
    run { $r->set('mykey', 'hello') };
    my $script = $r->script('return redis.call("get", KEYS[1])');
    my $result = run { $script->run(['mykey']) };
    is($result, 'hello', 'run([keys])');
    is($script->sha, Digest::SHA::sha1_hex('return redis.call("get", KEYS[1])'), 'sha: the SHA1 of the source');
    is($script->script, 'return redis.call("get", KEYS[1])', 'script: the source');
};

subtest 'keys and arguments' => sub {
    my $s = $r->script(<<'LUA');
local current = tonumber(redis.call('GET', KEYS[1]) or 0)
local n = current + tonumber(ARGV[1])
redis.call('SET', KEYS[1], n)
return {n, ARGV[2], KEYS[1]}
LUA
    run { $r->del('sc:n') };
    is(run { $s->run(['sc:n'], [10, 'x']) }, [10, 'x', 'sc:n'], 'run(\@keys, \@args): a table is an array ref');
    is(run { $s->call_with_keys(1, 'sc:n', 5, 'y') }, [15, 'y', 'sc:n'], 'call_with_keys($n, @keys, @args)');
    my $noargs = $r->script('return ARGV[1] .. "-" .. #KEYS');
    is(run { $noargs->call('a') }, 'a-0', 'call(@args): no keys');
    is(run { $r->script('return nil')->call }, undef, 'nil: undef');
    is(run { $r->script('return 42')->call }, 42, 'an integer');
    is(run { $r->script('return "str"')->call }, 'str', 'a string');
    is(run { $r->script('return redis.status_reply("FINE")')->call }, 'FINE', 'a status');
};

subtest 'EVALSHA, and EVAL once after SCRIPT FLUSH (NOSCRIPT)' => sub {
    my $src = 'return "v" .. ARGV[1]';
    my $s = $r->script($src);
    is(run { $s->load }, $s->sha, 'load: SCRIPT LOAD gives the SHA1');
    my ($sha0, $eval0) = (calls('evalsha'), calls('eval'));
    is(run { $s->call(1) }, 'v1', 'run');
    is(calls('eval'), $eval0, 'by EVALSHA only (the script was loaded)');
    ok(calls('evalsha') > $sha0, 'EVALSHA ran');

    is(run { $r->script_flush }, 'OK', 'SCRIPT FLUSH');
    is(run { $r->script_exists($s->sha) }, [0], 'the server no longer has it');
    is(run { $s->call(2) }, 'v2', 'the call still succeeds: NOSCRIPT, then EVAL');
    is(calls('eval'), $eval0 + 1, 'one EVAL');
    is(run { $r->script_exists($s->sha) }, [1], 'which loaded it again');
    is(run { $s->call(3) }, 'v3', 'and the next call');
    is(calls('eval'), $eval0 + 1, 'goes by EVALSHA again');

    my $fresh = $r->script('return "never loaded"');
    is(run { $fresh->call }, 'never loaded', 'a script never loaded runs at its first call');
};

subtest 'Lua errors' => sub {
    my $e = dies { run { $r->script('return redis.error_reply("MYERR boom")')->call } };
    isa_ok($e, ['Future::IO::Redis::Error::Redis'], 'error_reply: a Redis error');
    is($e->type, 'MYERR', 'with its type');
    like("$e", qr/boom/, 'and message');

    run { $r->set('sc:str', 'text') };
    my ($eval0) = calls('eval');
    my $w = dies { run { $r->script('return redis.call("INCR", KEYS[1])')->run(['sc:str']) } };
    isa_ok($w, ['Future::IO::Redis::Error::Redis'], 'a failing redis.call: a Redis error');
    like("$w", qr/not an integer/, 'the server\'s message');

    my $s = $r->script('return redis.call("INCR", KEYS[1])');
    run { $s->load };
    my $eval1 = calls('eval');
    ok(dies { run { $s->run(["sc:str"]) } }, "fails again");
    is(calls('eval'), $eval1, 'an error other than NOSCRIPT is not retried with EVAL');

    my $c = dies { run { $r->script('this is not lua')->call } };
    isa_ok($c, ['Future::IO::Redis::Error::Redis'], 'a script that does not compile: a Redis error');
    like("$c", qr/compil|syntax|Error/i, 'saying so');
    is(run { $r->ping }, 'PONG', 'the connection goes on');
};

subtest 'with a prefix: KEYS get it, ARGV not' => sub {
    my $p = Future::IO::Redis->new(host => '127.0.0.1', port => $srv->port, prefix => 'app:');
    run { $p->connect };
    my $s = $p->script('redis.call("SET", KEYS[1], ARGV[1]); return KEYS[1]');
    is(run { $s->run(['k'], ['val']) }, 'app:k', 'the script saw the prefixed key');
    is(run { $r->get('app:k') }, 'val', 'the value is under app:k, unprefixed');
};

subtest 'async/await and several scripts at once' => sub {
    my $s = $r->script('return tonumber(ARGV[1]) * 2');
    run { $r->script_flush };
    my @f = map { $s->call($_) } 1 .. 10;
    is([run { Future->needs_all(@f) }], [map { $_ * 2 } 1 .. 10],
        'ten calls in flight at once, all NOSCRIPT then EVAL');
    my $v = run { (async sub { (await $s->call(21)) + 0 })->() };
    is($v, 42, 'awaited');
};

done_testing;
