use strict;
use warnings;
use Test2::V0;
use lib 't/lib';
use FIORTest;
use Future::IO::Redis;
use Encode ();

# Keys and values are bytes, all 256 of them, both ways. A string with wide
# characters has no bytes until the program encodes it: it is refused.

my $srv = start_server();
my $r = Future::IO::Redis->new(host => '127.0.0.1', port => $srv->port);
run { $r->connect };

my $all = join '', map { chr } 0 .. 255;

subtest 'all 256 byte values in a value' => sub {
    is(run { $r->set('bin:all', $all) }, 'OK', 'SET');
    my $got = run { $r->get('bin:all') };
    is(length $got, 256, '256 bytes back');
    ok($got eq $all, 'the same bytes');
    ok(!utf8::is_utf8($got), 'a byte string');
    is(run { $r->strlen('bin:all') }, 256, 'the server holds 256 bytes');
    my $rev = reverse $all;
    run { $r->rpush('bin:list', $all, $rev, '') };
    is(run { $r->lrange('bin:list', 0, -1) }, [$all, $rev, ''], 'in a list, with the empty string');
};

subtest 'all 256 byte values in keys' => sub {
    my @f = map { $r->set("bin:k:" . chr($_), $_) } 0 .. 255;
    run { Future->needs_all(@f) };
    my @got = run { Future->needs_all(map { $r->get("bin:k:" . chr($_)) } 0 .. 255) };
    is(\@got, [0 .. 255], 'each key its own value');
    my $keys = run { $r->keys('bin:k:*') };
    is(scalar @$keys, 256, 'KEYS: 256 keys');
    is([sort @$keys], [sort map { "bin:k:" . chr($_) } 0 .. 255], 'the same names, byte for byte');
    is(run { $r->set($all, 'v') }, 'OK', 'a key of all 256 bytes');
    is(run { $r->get($all) }, 'v', 'read back by it');
    is(run { $r->set('', 'empty key') }, 'OK', 'the empty key');
    is(run { $r->get('') }, 'empty key', 'read back');
};

subtest 'CR LF and protocol look-alikes' => sub {
    my $evil = "a\r\nb\r\n*3\r\n\$3\r\nSET\r\n\$1\r\nx\r\n\$1\r\ny\r\n";
    is(run { $r->set("bin:crlf\r\n", $evil) }, 'OK', 'SET with CR LF in key and value');
    is(run { $r->get("bin:crlf\r\n") }, $evil, 'read back whole');
    is(run { $r->exists('x') }, 0, 'nothing was injected');
    run { $r->hset('bin:h', "f\0\r\n", "\0v\0") };
    is(run { $r->hgetall('bin:h') }, { "f\0\r\n" => "\0v\0" }, 'NULs and CR LF in hash fields and values');
    is(run { $r->echo("\r\n") }, "\r\n", 'ECHO CR LF');
};

subtest 'UTF-8 bytes' => sub {
    my $text = "Hello \x{4e16}\x{754c} \x{1F30D} \x{645}\x{631}\x{62d}\x{628}\x{627}";
    my $bytes = Encode::encode('UTF-8', $text);
    is(run { $r->set('bin:utf8', $bytes) }, 'OK', 'SET of UTF-8 encoded text');
    my $got = run { $r->get('bin:utf8') };
    ok($got eq $bytes, 'the same bytes back');
    ok(!utf8::is_utf8($got), 'as bytes: decoding is the program\'s');
    is(Encode::decode('UTF-8', $got), $text, 'which decode to the text');
    run { $r->set($bytes, 'by utf-8 key') };
    is(run { $r->get($bytes) }, 'by utf-8 key', 'a UTF-8 encoded key');
};

subtest 'characters up to 0xFF are bytes, however Perl holds them' => sub {
    my $plain = "caf\xe9";
    my $upgraded = "caf\xe9";
    utf8::upgrade($upgraded);
    ok(utf8::is_utf8($upgraded), 'one string held upgraded');
    run { $r->set('bin:l1a', $plain) };
    run { $r->set('bin:l1b', $upgraded) };
    is(run { $r->strlen('bin:l1b') }, 4, 'the upgraded one went as 4 bytes, not its UTF-8 form');
    ok(run { $r->get('bin:l1a') } eq run { $r->get('bin:l1b') }, 'both stored the same');
    ok(utf8::is_utf8($upgraded), 'the caller\'s string is left as it was');
};

subtest 'wide characters are an error, not corruption' => sub {
    my $wide = "smile \x{263A}";
    my $e = dies { run { $r->set('bin:wide', $wide) } };
    isa_ok($e, ['Future::IO::Redis::Error'], 'SET of a wide string fails with an error object');
    is($e->code, 'AREDIS_ERR_INVALID', 'code INVALID');
    like("$e", qr/argument 3 has wide characters/, 'the message names the argument');
    like("$e", qr/encode/i, 'and says what to do');
    is(run { $r->exists('bin:wide') }, 0, 'nothing was stored');
    is($wide, "smile \x{263A}", 'the caller\'s string is untouched');

    my $k = dies { run { $r->get("key \x{100}") } };
    like("$k", qr/argument 2 has wide characters/, 'a wide key too');

    run { $r->del('bin:p1') };
    my $p = dies { run { $r->pipeline->set('bin:p1', 1)->set('bin:p2', "\x{263A}")->execute } };
    isa_ok($p, ['Future::IO::Redis::Error'], 'a pipeline holding one fails whole');
    is(run { $r->exists('bin:p1') }, 0, 'and sends nothing');
    my $t = dies { run { $r->multi(sub { $_[0]->set('bin:p1', 1); $_[0]->set('bin:p2', "\x{263A}") }) } };
    isa_ok($t, ['Future::IO::Redis::Error'], 'so does a transaction');
    is(run { $r->exists('bin:p1') }, 0, 'and sends nothing');
    is(run { $r->ping }, 'PONG', 'the connection is fine');

    my $u = dies { run { $r->set('bin:undef', undef) } };
    isa_ok($u, ['Future::IO::Redis::Error'], 'an undef argument: an error object too');
    like("$u", qr/argument 3 is undef/, 'naming it');
};

subtest 'large values' => sub {
    my $big = $all x 4096;    # 1 MiB
    is(run { $r->set('bin:big', $big) }, 'OK', 'SET 1 MiB');
    my $got = run { $r->get('bin:big') };
    is(length $got, length $big, 'GET 1 MiB');
    ok($got eq $big, 'the same bytes');
    my $huge = 'x' x (16 * 1024 * 1024);
    is(run { $r->set('bin:huge', $huge) }, 'OK', 'SET 16 MiB');
    is(length(run { $r->get('bin:huge') }), length $huge, 'GET 16 MiB');
};

done_testing;
