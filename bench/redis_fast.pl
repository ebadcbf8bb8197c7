#!/usr/bin/perl
# bench/redis_fast.pl — the compare workload on Perl's Redis::Fast, the client
# the reference design (Future::IO::Redis) compared itself with. Run by
# bench/compare; prints one RESULT line like compare's own workers.
#
#   perl redis_fast.pl (--host H --port P | --sock PATH) --op set|get -P DEPTH -n N -d SIZE
#
# Depth 1 awaits each command; depth D sends D commands with callbacks, then
# wait_all_responses (Redis::Fast's pipelining: a batch, not a window).
# CPU is the process's user+sys (times) over the command phase only.
use strict;
use warnings;
use Getopt::Long;
use Redis::Fast;
use Time::HiRes qw(time);

my ($host, $port, $sock, $op, $depth, $n, $size) = ('127.0.0.1', 6379, undef, 'set', 1, 10000, 3);
GetOptions('host=s' => \$host, 'port=i' => \$port, 'sock=s' => \$sock, 'op=s' => \$op,
           'P=i' => \$depth, 'n=i' => \$n, 'd=i' => \$size) or die "bad options\n";

my $r = $sock ? Redis::Fast->new(sock => $sock, reconnect => 0)
              : Redis::Fast->new(server => "$host:$port", reconnect => 0);
$r->ping;

my $key = 'key:__rand_int__';
my $val = 'x' x $size;
my $is_get = $op eq 'get';
my ($errors, $done) = (0, 0);
my $cb = $is_get
    ? sub { my ($v, $e) = @_; $errors++ if $e || !defined $v || length($v) != $size; $done++ }
    : sub { my ($v, $e) = @_; $errors++ if $e; $done++ };

my ($u0, $s0) = times;
my $t0 = time;
if ($depth <= 1) {
    for (1 .. $n) {
        my $v = eval { $is_get ? $r->get($key) : $r->set($key, $val) };
        $errors++ if !defined $v || ($is_get && length($v) != $size);
        $done++;
    }
} else {
    my $left = $n;
    while ($left > 0) {
        my $k = $left < $depth ? $left : $depth;
        for (1 .. $k) {
            if ($is_get) { $r->get($key, $cb) } else { $r->set($key, $val, $cb) }
        }
        $r->wait_all_responses;
        $left -= $k;
    }
}
my $secs = time - $t0;
my ($u1, $s1) = times;
printf "RESULT ops=%d errors=%d secs=%.6f user=%.6f sys=%.6f\n",
    $done, $errors, $secs, $u1 - $u0, $s1 - $s0;
exit($errors ? 1 : 0);
