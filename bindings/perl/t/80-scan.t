use strict;
use warnings;
use Test2::V0;
use lib 't/lib';
use FIORTest;
use Future::AsyncAwait;
use Future::IO::Redis;

# scan_iter and its family: every element seen, batch by batch.

my $srv = start_server();
my $r = Future::IO::Redis->new(host => '127.0.0.1', port => $srv->port);
run { $r->connect };

# Walk an iterator to its end: (every element, number of next calls).
sub drain {
    my ($iter) = @_;
    my (@all, $calls);
    while (1) {
        $calls++;
        die "the walk does not end\n" if $calls > 10_000;
        my $batch = run { $iter->next };
        last unless defined $batch;
        is(ref $batch, 'ARRAY', 'a batch is an array ref') if $calls == 1;
        push @all, @$batch;
    }
    return (\@all, $calls);
}

run { $r->mset(map { ("user:$_", $_) } 1 .. 250) };
run { $r->mset(map { ("other:$_", $_) } 1 .. 50) };

subtest 'scan_iter: 250 keys, each seen' => sub {
    my ($keys, $calls) = drain($r->scan_iter(match => 'user:*', count => 20));
    my %seen = map { $_ => 1 } @$keys;
    is([sort keys %seen], [sort map {"user:$_"} 1 .. 250], 'every user: key, and nothing else');
    ok($calls > 2, "in several batches ($calls calls)");
};

subtest 'the reference design\'s loop' => sub {
    my %seen;
    run { (async sub {
        my $iter = $r->scan_iter(match => 'user:*', count => 100);
        while (my $keys = await $iter->next) {
            for my $key (@$keys) { $seen{$key}++ }
        }
    })->() };
    is(scalar keys %seen, 250, 'the while (await ->next) loop sees all 250');
};

subtest 'match, count, type; no match' => sub {
    my ($all) = drain($r->scan_iter(count => 1000));
    my %all = map { $_ => 1 } @$all;
    is(scalar keys %all, 300, 'no match: every key');
    my ($some) = drain($r->scan_iter(match => 'user:1?'));
    is([sort { $a cmp $b } keys %{ { map { $_ => 1 } @$some } }], [sort map {"user:1$_"} 0 .. 9], 'a glob');
    my ($none) = drain($r->scan_iter(match => 'nothing:*'));
    is($none, [], 'nothing matches: empty');
    run { $r->rpush('alist', 'x') };
    my ($lists) = drain($r->scan_iter(type => 'list'));
    is($lists, ['alist'], 'type => list');
};

subtest 'next after the end; reset' => sub {
    my $iter = $r->scan_iter(match => 'other:*', count => 1000);
    my ($first) = drain($iter);
    is(scalar(my @u = keys %{ { map { $_ => 1 } @$first } }), 50, '50 others');
    ok($iter->done, 'done');
    is(run { $iter->next }, undef, 'next after the end: undef again');
    $iter->reset;
    ok(!$iter->done, 'reset');
    my ($again) = drain($iter);
    is(scalar(my @v = keys %{ { map { $_ => 1 } @$again } }), 50, 'walks again from the start');
};

subtest 'hscan_iter' => sub {
    run { $r->hset('bighash', map { ("f$_", "v$_") } 1 .. 300) };
    my ($flat) = drain($r->hscan_iter('bighash', count => 50));
    is(scalar(@$flat) % 2, 0, 'field, value pairs');
    my %h = @$flat;
    is(\%h, { map { ("f$_", "v$_") } 1 .. 300 }, 'every field with its value');
    my ($m) = drain($r->hscan_iter('bighash', match => 'f1??'));
    my %mh = @$m;
    is([sort keys %mh], [sort map {"f$_"} 100 .. 199], 'match on fields');
};

subtest 'sscan_iter' => sub {
    run { $r->sadd('bigset', map {"m$_"} 1 .. 300) };
    my ($members) = drain($r->sscan_iter('bigset', count => 50));
    my %m = map { $_ => 1 } @$members;
    is([sort keys %m], [sort map {"m$_"} 1 .. 300], 'every member');
};

subtest 'zscan_iter' => sub {
    run { $r->zadd('bigz', map { ($_, "z$_") } 1 .. 300) };
    my ($flat) = drain($r->zscan_iter('bigz', count => 50));
    my %z = @$flat;
    is(scalar keys %z, 300, 'every member');
    is($z{z42}, 42, 'with its score');
};

subtest 'with a prefix' => sub {
    my $p = Future::IO::Redis->new(host => '127.0.0.1', port => $srv->port, prefix => 'user:');
    run { $p->connect };
    my ($keys) = drain($p->scan_iter(count => 100));
    my %k = map { $_ => 1 } @$keys;
    is([sort keys %k], [sort 1 .. 250], 'only the namespace, names without the prefix');
    my ($h) = drain($p->hscan_iter('nohash'));
    is($h, [], 'HSCAN of a missing key: nothing');
};

subtest 'an error' => sub {
    my $e = dies { run { $r->sscan_iter('bighash')->next } };
    isa_ok($e, ['Future::IO::Redis::Error::Redis'], 'SSCAN of a hash: the Redis error');
    is($e->type, 'WRONGTYPE', 'WRONGTYPE');
};

done_testing;
