use strict;
use warnings;
use Test2::V0;
use lib 't/lib';
use FIORTest;
use Future::IO::Redis;

# A server that restarts: with reconnect => 1 the client comes back by
# itself and what was issued meanwhile waits; with reconnect => 0 the
# commands fail.

sub fast { (reconnect_delay => 0.05, reconnect_delay_max => 0.3) }

subtest 'reconnect => 1: kill, restart, go on' => sub {
    my $srv = start_server();
    my (@connects, @disconnects, @errors);
    my $r = Future::IO::Redis->new(host => '127.0.0.1', port => $srv->port, reconnect => 1, fast(),
        database      => 1,
        client_name   => 'fior-reconn',
        on_connect    => sub { push @connects, 1 },
        on_disconnect => sub { push @disconnects, $_[1] },
        on_error      => sub { push @errors, $_[1] });
    run { $r->connect };
    is(scalar @connects, 1, 'on_connect once');
    is(run { $r->set('k', 'before') }, 'OK', 'SET before');

    $srv->restart;
    ok(wait_until { @disconnects >= 1 }, 'on_disconnect when the server died');
    ok(wait_until { @connects == 2 }, 'on_connect a second time after the restart');
    ok($r->is_connected, 'connected again');
    is(run { $r->get('k') }, undef, 'a fresh server (nothing persisted)');
    is(run { $r->set('k', 'after') }, 'OK', 'SET after the restart');
    is(run { $r->get('k') }, 'after', 'GET after the restart');
    like(run { $r->client_info }, qr/\bdb=1\b/, 'the database selected again');
    is(run { $r->client_getname }, 'fior-reconn', 'the name set again');
    ok(scalar @errors >= 1, 'on_error reported the loss');
    isa_ok($errors[0], ['Future::IO::Redis::Error'], 'with an error object');
    is($r->stats->{connects}, 2, 'stats: 2 connects');
};

subtest 'reconnect => 1: commands issued while down wait and complete' => sub {
    my $srv = start_server();
    my @connects;
    my $r = Future::IO::Redis->new(host => '127.0.0.1', port => $srv->port, reconnect => 1, fast(),
        on_connect => sub { push @connects, 1 });
    run { $r->connect };
    $srv->kill;
    ok(wait_until { !$r->is_connected }, 'the client saw the server go');

    my @f = map { $r->set("q$_", $_) } 1 .. 20;
    push @f, $r->incr('q-counter');
    ok(!(grep { $_->is_ready } @f), 'the commands wait');
    # while they wait the client keeps trying (and failing): no command fails
    ok(!wait_until(sub { grep { $_->is_ready } @f }, 0.5), 'still waiting half a second later');

    $srv->restart;
    my @res = run { Future->needs_all(@f) };
    is(\@res, [('OK') x 20, 1], 'every command issued while down completed, in order');
    is(scalar @connects, 2, 'on_connect counted twice');

    my $probe = Future::IO::Redis->new(host => '127.0.0.1', port => $srv->port);
    run { $probe->connect };
    is(run { $probe->mget(map {"q$_"} 1 .. 20) }, [1 .. 20], 'they reached the new server');
};

subtest 'reconnect => 1: a command in flight when the server dies fails once' => sub {
    my $srv = start_server();
    my $r = Future::IO::Redis->new(host => '127.0.0.1', port => $srv->port, reconnect => 1, fast());
    run { $r->connect };
    my $out = $r->stats->{bytes_out};
    my $slow = $r->command('DEBUG', 'SLEEP', 5);
    # it is on the wire once the loop has run
    ok(wait_until { $r->stats->{bytes_out} > $out }, 'sent');
    $srv->kill;
    my $e = dies { run { $slow } };
    isa_ok($e, ['Future::IO::Redis::Error::Connection'], 'the command in flight fails with a Connection error');
    $srv->restart;
    ok(wait_until { $r->is_connected }, 'reconnected');
    is(run { $r->ping }, 'PONG', 'and works');
};

subtest 'reconnect => 1: a program started before its server' => sub {
    my $port = free_port();
    my @connects;
    my $r = Future::IO::Redis->new(host => '127.0.0.1', port => $port, reconnect => 1, fast(),
        request_timeout => 8, on_connect => sub { push @connects, 1 });
    my $e = dies { run { $r->connect } };
    isa_ok($e, ['Future::IO::Redis::Error::Connection'], 'connect fails at its first attempt');
    my $f = $r->set('early', 'bird');
    ok(!$f->is_ready, 'a command waits for the server');
    my $srv = start_server(port => $port);
    is(run { $f }, 'OK', 'and completes once it is there');
    ok($r->is_connected, 'connected');
    is(scalar @connects, 1, 'on_connect once');
};

subtest 'reconnect => 1, max_reconnect_attempts: the policy gives up' => sub {
    my $srv = start_server();
    my @errors;
    my $r = Future::IO::Redis->new(host => '127.0.0.1', port => $srv->port, reconnect => 1, fast(),
        max_reconnect_attempts => 2, on_error => sub { push @errors, "$_[1]" });
    run { $r->connect };
    $srv->kill;
    ok(wait_until { !$r->is_connected }, 'disconnected');
    my ($t, undef, $e) = elapsed { run { $r->get('k') } };
    isa_ok($e, ['Future::IO::Redis::Error'], 'a waiting command fails once the policy gives up');
    ok($e->isa('Future::IO::Redis::Error::Connection') || $e->isa('Future::IO::Redis::Error::Disconnected'),
        'as a Connection or Disconnected error: ' . ref $e);
    ok($t < 4, "within the attempts' delays (${t}s)");
    ok((grep {/gave up/} @errors), 'on_error says it gave up') or diag("@errors");
};

subtest 'reconnect => 0: commands fail' => sub {
    my $srv = start_server();
    my (@connects, @disconnects);
    my $r = Future::IO::Redis->new(host => '127.0.0.1', port => $srv->port, reconnect => 0,
        on_connect => sub { push @connects, 1 }, on_disconnect => sub { push @disconnects, 1 });
    run { $r->connect };
    is(run { $r->ping }, 'PONG', 'works');
    $srv->kill;
    ok(wait_until { @disconnects }, 'on_disconnect');
    ok(!$r->is_connected, 'not connected');
    my ($t, undef, $e) = elapsed { run { $r->get('k') } };
    ok($e && ($e->isa('Future::IO::Redis::Error::Connection') || $e->isa('Future::IO::Redis::Error::Disconnected')),
        'a command fails with Connection or Disconnected: ' . (ref $e || $e));
    ok($t < 1, "at once (${t}s)");

    $srv->restart;
    my $e2 = dies { run { $r->get('k') } };
    isa_ok($e2, ['Future::IO::Redis::Error'], 'still failing after the server is back: nothing reconnects');
    ok(!wait_until(sub { @connects > 1 }, 0.5), 'no reconnect by itself');

    is(run { $r->connect }, $r, 'connect() again');
    is(run { $r->ping }, 'PONG', 'works again');
    is(scalar @connects, 2, 'on_connect twice');
};

subtest 'reconnect => 0: a command in flight fails with a Connection error' => sub {
    my $srv = start_server();
    my $r = Future::IO::Redis->new(host => '127.0.0.1', port => $srv->port);
    run { $r->connect };
    my $out = $r->stats->{bytes_out};
    my $slow = $r->command('DEBUG', 'SLEEP', 5);
    ok(wait_until { $r->stats->{bytes_out} > $out }, 'sent');
    $srv->kill;
    my ($t, undef, $e) = elapsed { run { $slow } };
    isa_ok($e, ['Future::IO::Redis::Error::Connection'], 'Connection error');
    ok($t < 2, "at once (${t}s)");
};

done_testing;
