use strict;
use warnings;
use Test2::V0;
use lib 't/lib';
use FIORTest;
use Future::IO::Redis;

# Where to connect, the handshake's options, and what a failed connect is.

my $srv = start_server();
my $port = $srv->port;

# A second, plain client to look at the server from outside.
my $probe = Future::IO::Redis->new(host => '127.0.0.1', port => $port);
run { $probe->connect };

subtest 'host and port' => sub {
    my $r = Future::IO::Redis->new(host => '127.0.0.1', port => $port);
    ok(!$r->is_connected, 'not connected before connect');
    is(run { $r->connect }, $r, 'connect resolves to the client');
    ok($r->is_connected, 'is_connected');
    is(run { $r->connect }, $r, 'connect again on a connected client: the same client');
    is(run { $r->ping }, 'PONG', 'PING');
    like(run { $r->client_info }, qr/laddr=127\.0\.0\.1:$port\b/, 'the server is the one asked for');
};

subtest 'host "localhost" (resolved off the loop)' => sub {
    my $r = Future::IO::Redis->new(host => 'localhost', port => $port);
    run { $r->connect };
    is(run { $r->ping }, 'PONG', 'PING over a resolved name');
};

subtest 'uri redis://host:port/db' => sub {
    my $r = Future::IO::Redis->new(uri => "redis://127.0.0.1:$port/3");
    run { $r->connect };
    like(run { $r->client_info }, qr/\bdb=3\b/, 'the database from the URI is selected');
    run { $r->set('uri:k', 'in3') };
    is(run { $probe->get('uri:k') }, undef, 'not in database 0');
    is(run { $probe->command('SELECT', 3) }, 'OK', 'probe: SELECT 3');
    is(run { $probe->get('uri:k') }, 'in3', 'the key is in database 3');
    run { $probe->command('SELECT', 0) };
};

subtest 'uri query: client_name, protocol, timeout' => sub {
    my $r = Future::IO::Redis->new(uri => "redis://127.0.0.1:$port/0?client_name=from-uri&protocol=2&timeout=0.3");
    run { $r->connect };
    is(run { $r->client_getname }, 'from-uri', '?client_name=');
    like(run { $r->client_info }, qr/\bresp=2\b/, '?protocol=2');
    isa_ok(dies { run { $r->command('DEBUG', 'SLEEP', 0.6) } }, ['Future::IO::Redis::Error::Timeout'],
        '?timeout=0.3 is the request timeout');
    run { $probe->ping };    # (the server slept)
    my $o = Future::IO::Redis->new(uri => "redis://127.0.0.1:$port?timeout=0.3", request_timeout => 5);
    run { $o->connect };
    is(run { $o->command('DEBUG', 'SLEEP', 0.6) }, 'OK', 'request_timeout given to new wins over the URI\'s');
    like(dies { Future::IO::Redis->new(uri => 'redis://host:99999') }, qr/uri/i, 'a bad URI: new dies');
};

subtest 'uri unix:// and path =>' => sub {
    my $r = Future::IO::Redis->new(uri => $srv->unix_url);
    run { $r->connect };
    is(run { $r->ping }, 'PONG', 'PING over the unix socket');
    like(run { $r->client_info }, qr/laddr=\S*redis\.sock/, 'a unix socket connection');

    my $p = Future::IO::Redis->new(path => $srv->sock);
    run { $p->connect };
    like(run { $p->client_info }, qr/laddr=\S*redis\.sock/, 'path => the socket');
};

subtest 'database' => sub {
    my $r = Future::IO::Redis->new(host => '127.0.0.1', port => $port, database => 2);
    run { $r->connect };
    like(run { $r->client_info }, qr/\bdb=2\b/, 'SELECT 2 in the handshake');
    my $bad = Future::IO::Redis->new(host => '127.0.0.1', port => $port, database => 99);
    my $e = dies { run { $bad->connect } };
    isa_ok($e, ['Future::IO::Redis::Error::Redis'], 'a database the server lacks');
    like("$e", qr/DB index is out of range/i, 'with the server\'s words');
};

subtest 'client_name' => sub {
    my $r = Future::IO::Redis->new(host => '127.0.0.1', port => $port, client_name => 'fior-conn');
    run { $r->connect };
    is(run { $r->client_getname }, 'fior-conn', 'CLIENT SETNAME in the handshake');
    like(run { $probe->client_list }, qr/name=fior-conn\b/, 'the server lists it');
    like(dies { Future::IO::Redis->new(client_name => 'has space') }, qr/client_name/,
        'a name with a space is refused by new');
};

subtest 'unknown option' => sub {
    like(dies { Future::IO::Redis->new(hots => 'x') }, qr/unknown option 'hots'/, 'a typo is refused');
};

subtest 'password and ACL user' => sub {
    my $auth = start_server(extra => ['--requirepass', 'sekret']);
    my $ap = $auth->port;

    my $ok = Future::IO::Redis->new(host => '127.0.0.1', port => $ap, password => 'sekret');
    run { $ok->connect };
    is(run { $ok->ping }, 'PONG', 'the right password');
    is(run { $ok->acl_whoami }, 'default', 'as the default user');

    my $uri = Future::IO::Redis->new(uri => "redis://:sekret\@127.0.0.1:$ap");
    run { $uri->connect };
    is(run { $uri->ping }, 'PONG', 'the password from the URI');

    my $wrong = Future::IO::Redis->new(host => '127.0.0.1', port => $ap, password => 'nope');
    my ($t, undef, $e) = elapsed { run { $wrong->connect } };
    isa_ok($e, ['Future::IO::Redis::Error::Redis'], 'a wrong password');
    is($e->type, 'WRONGPASS', 'its type is the server\'s word');
    is($e->code, 'AREDIS_ERR_AUTH', 'aredis: AUTH refused');
    like("$e", qr/auth|password|denied/i, 'the message says so');
    unlike("$e", qr/nope/, 'without the password');
    ok($t < 2, 'at once');
    ok(!$wrong->is_connected, 'not connected');

    my $none = Future::IO::Redis->new(host => '127.0.0.1', port => $ap);
    $e = dies { run { $none->connect } };
    isa_ok($e, ['Future::IO::Redis::Error::Redis'], 'no password for a server that needs one');
    is($e->type, 'NOAUTH', 'NOAUTH');

    is(run { $ok->acl_setuser('alice', 'on', '>alicepw', '~*', '&*', '+@all') }, 'OK', 'ACL SETUSER');
    my $alice = Future::IO::Redis->new(host => '127.0.0.1', port => $ap,
        username => 'alice', password => 'alicepw');
    run { $alice->connect };
    is(run { $alice->acl_whoami }, 'alice', 'username => the ACL user');
    my $au = Future::IO::Redis->new(uri => "redis://alice:alicepw\@127.0.0.1:$ap");
    run { $au->connect };
    is(run { $au->acl_whoami }, 'alice', 'the ACL user from the URI');
    my $bad = Future::IO::Redis->new(host => '127.0.0.1', port => $ap,
        username => 'alice', password => 'sekret');
    isa_ok(dies { run { $bad->connect } }, ['Future::IO::Redis::Error::Redis'],
        'the ACL user with the wrong password');
    like(dies { Future::IO::Redis->new(username => 'alice') }, qr/password/,
        'a username without a password is refused by new');
};

subtest 'a closed port: Connection error, quickly' => sub {
    my $fp = free_port();
    my @errors;
    my $r = Future::IO::Redis->new(host => '127.0.0.1', port => $fp,
        on_error => sub { push @errors, $_[1] });
    my ($t, undef, $e) = elapsed { run { $r->connect } };
    isa_ok($e, ['Future::IO::Redis::Error::Connection'], 'connect fails');
    is($e->code, 'AREDIS_ERR_CONNREFUSED', 'refused');
    like("$e", qr/refused/i, 'the message says refused');
    ok($t < 1, "within a second (${t}s)");
    ok(!$r->is_connected, 'not connected');
    is(scalar @errors, 1, 'on_error ran once');
    isa_ok($errors[0], ['Future::IO::Redis::Error::Connection'], 'on_error got the error object');

    my $c = dies { run { $r->get('k') } };
    isa_ok($c, ['Future::IO::Redis::Error'], 'a command on the client that never connected fails');
    ok($c->isa('Future::IO::Redis::Error::Disconnected') || $c->isa('Future::IO::Redis::Error::Connection'),
        'as Disconnected or Connection: ' . ref $c);

    my $never = Future::IO::Redis->new(host => '127.0.0.1', port => $port);
    my $n = dies { run { $never->get('k') } };
    isa_ok($n, ['Future::IO::Redis::Error::Disconnected'], 'a command before connect');
    unlike("$n", qr/aredis_/, 'the message names no C function');
};

subtest 'connect_timeout' => sub {
    my ($listener, $lport) = silent_listener();
    my $r = Future::IO::Redis->new(host => '127.0.0.1', port => $lport, connect_timeout => 0.5);
    my ($t, undef, $e) = elapsed { run { $r->connect } };
    isa_ok($e, ['Future::IO::Redis::Error::Timeout'], 'a server that never answers the handshake');
    ok($t >= 0.4, "not before the timeout (${t}s)");
    ok($t < 2, "soon after it (${t}s)");

    # The loop is not blocked meanwhile.
    require IO::Async::Timer::Periodic;
    my $ticks = 0;
    my $timer = IO::Async::Timer::Periodic->new(interval => 0.05, on_tick => sub { $ticks++ });
    $FIORTest::LOOP->add($timer);
    $timer->start;
    my $r2 = Future::IO::Redis->new(host => '127.0.0.1', port => $lport, connect_timeout => 0.3);
    my $e2 = dies { run { $r2->connect } };
    $timer->stop;
    $FIORTest::LOOP->remove($timer);
    isa_ok($e2, ['Future::IO::Redis::Error::Timeout'], 'again');
    ok($ticks >= 3, "the loop ran while connecting ($ticks ticks)");
};

subtest 'on_connect, on_disconnect, on_error' => sub {
    my @ev;
    my $r = Future::IO::Redis->new(host => '127.0.0.1', port => $port,
        on_connect    => sub { push @ev, ['connect', $_[0]] },
        on_disconnect => sub { push @ev, ['disconnect', $_[0], $_[1]] },
        on_error      => sub { push @ev, ['error', $_[0], $_[1]] });
    run { $r->connect };
    is(scalar @ev, 1, 'one event after connect');
    is($ev[0][0], 'connect', 'on_connect');
    ref_is($ev[0][1], $r, 'on_connect gets the client');

    run { $r->ping };
    $r->disconnect;
    ok(wait_until { grep { $_->[0] eq 'disconnect' } @ev }, 'on_disconnect after disconnect');
    my ($d) = grep { $_->[0] eq 'disconnect' } @ev;
    ref_is($d->[1], $r, 'on_disconnect gets the client');
    ok(defined $d->[2] && length $d->[2], "and a reason: $d->[2]");
    ok(!$r->is_connected, 'not connected after disconnect');
    is([grep { $_->[0] eq 'error' } @ev], [], 'no on_error for a disconnect asked for');

    # connect again after disconnect
    run { $r->connect };
    is(scalar(grep { $_->[0] eq 'connect' } @ev), 2, 'connect after disconnect: on_connect again');
    is(run { $r->ping }, 'PONG', 'and it works');

    # a server that goes away: on_error and on_disconnect
    my $gone = start_server();
    my @g;
    my $c = Future::IO::Redis->new(host => '127.0.0.1', port => $gone->port,
        on_disconnect => sub { push @g, 'disconnect' },
        on_error      => sub { push @g, 'error:' . ref $_[1] });
    run { $c->connect };
    $gone->kill;
    ok(wait_until { grep { $_ eq 'disconnect' } @g }, 'on_disconnect when the server dies');
    ok((grep { /^error:Future::IO::Redis::Error::Connection$/ } @g), 'on_error with a Connection error')
        or diag "@g";
    ok(!$c->is_connected, 'not connected');
};

subtest 'clients come and go: descriptors are reused safely, none leaks' => sub {
    my $fds = sub { opendir(my $d, "/proc/$$/fd") or return -1; scalar grep { /^\d+$/ } readdir $d };
    # warm up (the loop's own handles)
    { my $w = Future::IO::Redis->new(host => '127.0.0.1', port => $port); run { $w->connect }; run { $w->ping } }
    my $before = $fds->();
    for my $i (1 .. 30) {
        my $c = Future::IO::Redis->new(host => '127.0.0.1', port => $port);
        run { $c->connect };
        is(run { $c->echo("round $i") }, "round $i", "round $i") if $i % 10 == 0;
        $c->disconnect if $i % 2;    # half end gracefully, half are just dropped
        run { $c->ping } if $i % 3 == 0 && !($i % 2);
    }
    my $refused = Future::IO::Redis->new(host => '127.0.0.1', port => free_port());
    eval { run { $refused->connect } } for 1 .. 5;
    undef $refused;
    my ($t, $v) = elapsed { my $c = Future::IO::Redis->new(host => '127.0.0.1', port => $port);
        run { $c->connect }; run { $c->ping } };
    is($v, 'PONG', 'a new client after all that works');
    ok($t < 1, "at once (${t}s)");
    ok(wait_until { $fds->() <= $before + 1 }, 'no descriptor leaked') or diag "before $before, now " . $fds->();
};

subtest 'a callback that dies does not break the client' => sub {
    my $r = Future::IO::Redis->new(host => '127.0.0.1', port => $port,
        on_connect => sub { die "boom in on_connect\n" });
    my @w;
    local $SIG{__WARN__} = sub { push @w, @_ };
    run { $r->connect };
    is(run { $r->ping }, 'PONG', 'still works');
    ok((grep {/boom in on_connect/} @w), 'the death is reported as a warning');
};

done_testing;
