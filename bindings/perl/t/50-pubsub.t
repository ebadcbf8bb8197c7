use strict;
use warnings;
use Test2::V0;
use lib 't/lib';
use FIORTest;
use Future::AsyncAwait;
use Future::IO::Redis::Subscription;
use Future::IO::Redis;
use Scalar::Util qw(weaken);

my $srv  = start_server();
my $port = $srv->port;

sub client {
    my $r = Future::IO::Redis->new(host => '127.0.0.1', port => $port, @_);
    run { $r->connect };
    return $r;
}

# How many subscribers the server counts on a channel (PUBSUB NUMSUB).
sub numsub {
    my ($r, $ch) = @_;
    my $x = run { $r->command('PUBSUB', 'NUMSUB', $ch) };
    return ref $x eq 'HASH' ? $x->{$ch} : $x->[1];
}

my $pub = client();

subtest 'subscribe, and a message published by another client' => sub {
    my $r = client();
    ok(!$r->in_pubsub, 'not in pub/sub before');
    my $sub = run { $r->subscribe('t:a') };
    isa_ok($sub, 'Future::IO::Redis::Subscription');
    is([$sub->channels], ['t:a'], 'channels');
    is($sub->channel_count, 1, 'channel_count');
    ok(!$sub->is_closed, 'not closed');
    ok($r->in_pubsub, 'in_pubsub');

    is(run { $pub->publish('t:a', 'hello') }, 1, 'PUBLISH reached one subscriber');
    is(run { $sub->next_message }, { type => 'message', channel => 't:a', message => 'hello' },
        'next_message: type, channel, message');

    my $same = run { $r->subscribe('t:b') };
    ref_is($same, $sub, 'a second subscribe on the client: the same subscription');
    is([sort $sub->channels], ['t:a', 't:b'], 'both channels held');
    is($sub->channel_count, 2, 'channel_count 2');
    is(numsub($pub, 't:b'), 1, 'the server counts the subscriber on t:b');

    is(run { $pub->publish('t:b', 'x') }, 1, 'PUBLISH to t:b');
    is(run { $sub->next }, { type => 'message', channel => 't:b', data => 'x' },
        'next: the payload under data');

    ref_is(run { $sub->subscribe('t:c') }, $sub, '$sub->subscribe resolves with the subscription');
    is(run { $pub->publish('t:c', 'y') }, 1, 'PUBLISH to t:c');
    is(run { $sub->next_message }->{message}, 'y', 'a channel added on the object delivers');
    is([$sub->get_replay_commands], [['SUBSCRIBE', 't:a', 't:b', 't:c']], 'replay commands');
};

subtest 'several channels: every message, in order' => sub {
    my $r   = client();
    my @chs = map {"t:multi:$_"} 1 .. 10;
    my $sub = run { $r->subscribe(@chs) };
    is($sub->channel_count, 10, '10 channels');
    is([sort $sub->channels], [sort @chs], 'all tracked');
    run { $pub->publish($_, "m:$_") } for @chs;
    my @got = map { run { $sub->next_message } } @chs;
    is([map { [$_->{channel}, $_->{message}] } @got], [map { [$_, "m:$_"] } @chs],
        'each channel\'s message, in publishing order');

    # Futures asked for before the messages come are served in order.
    my @f = map { $sub->next_message } 1 .. 3;
    ok(!$f[0]->is_ready, 'nothing buffered: the future waits');
    run { $pub->publish($chs[$_], "late$_") } for 0 .. 2;
    is([map { (run { $f[$_] })->{message} } 0 .. 2], ['late0', 'late1', 'late2'],
        'pending futures served in the order asked');

    # A cancelled future gives its message to the next one asking.
    my $c1 = $sub->next_message;
    my $c2 = $sub->next_message;
    $c1->cancel;
    run { $pub->publish($chs[0], 'after-cancel') };
    is((run { $c2 })->{message}, 'after-cancel', 'the cancelled future\'s turn went to the next');
};

subtest 'psubscribe: pmessage with its pattern' => sub {
    my $r   = client();
    my $sub = run { $r->psubscribe('news.*', 'log.*') };
    is([sort $sub->patterns], ['log.*', 'news.*'], 'patterns tracked');
    is([$sub->channels], [], 'no channels');
    is($sub->channel_count, 2, 'channel_count counts patterns');
    is(run { $pub->publish('news.sport', 'goal') }, 1, 'the pattern matched');
    is(run { $pub->publish('other', 'nope') },      0, 'a channel no pattern matches');
    is(run { $pub->publish('log.web', 'GET /') },   1, 'the second pattern matched');
    is(run { $sub->next_message },
        { type => 'pmessage', pattern => 'news.*', channel => 'news.sport', message => 'goal' },
        'pmessage: pattern, channel, message');
    is(run { $sub->next_message }->{pattern}, 'log.*', 'the other pattern');
    ref_is(run { $r->subscribe('plain') }, $sub, 'channels and patterns on one subscription');
    is($sub->channel_count, 3, 'channel_count includes every kind');
};

subtest 'ssubscribe: smessage (SPUBLISH, Redis 7)' => sub {
    my $r   = client();
    my $sub = run { $r->ssubscribe('t:orders') };
    is([$sub->sharded_channels], ['t:orders'], 'shard channels tracked');
    is(run { $pub->spublish('t:orders', 'o1') }, 1, 'SPUBLISH reached the subscriber');
    is(run { $sub->next_message }, { type => 'smessage', channel => 't:orders', message => 'o1' },
        'smessage');
    run { $sub->sunsubscribe };
    is(run { $pub->spublish('t:orders', 'o2') }, 0, 'after SUNSUBSCRIBE: nobody');
    ok($sub->is_closed, 'closed: nothing left');
};

subtest 'unsubscribe stops delivery' => sub {
    my $r   = client();
    my $sub = run { $r->subscribe('t:u1', 't:u2') };
    run { $r->psubscribe('t:u1*') };
    is(run { $pub->publish('t:u1', 'one') }, 2, 'channel and pattern both get it');
    run { $sub->next_message } for 1 .. 2;

    ref_is(run { $sub->unsubscribe('t:u1') }, $sub, 'unsubscribe resolves with the subscription');
    is([$sub->channels], ['t:u2'], 't:u1 no longer held');
    is(run { $pub->publish('t:u1', 'lost') }, 1, 'only the pattern counts for t:u1 now');
    is(run { $pub->publish('t:u2', 'two') }, 1, 't:u2 still delivered');
    is(run { $sub->next_message }->{type}, 'pmessage', 't:u1 came through the pattern only');
    is(run { $sub->next_message }->{message}, 'two', 'then t:u2');

    run { $sub->punsubscribe };
    is(run { $pub->publish('t:u1', 'x') }, 0, 'PUBLISH count 0 after PUNSUBSCRIBE');
    ok(!$sub->is_closed, 'a channel is left: still open');
    run { $r->unsubscribe };
    is(run { $pub->publish('t:u2', 'x') }, 0, 'PUBLISH count 0 after unsubscribing all');
    ok($sub->is_closed, 'nothing left: closed');
    is($sub->channel_count, 0, 'channel_count 0');
    ok(!$r->in_pubsub, 'not in_pubsub');
    is(run { $sub->next_message }, undef, 'next_message on a closed subscription: undef');
    ok(run { $sub->unsubscribe('t:u2') }, 'unsubscribe on a closed subscription resolves');
    like(dies { run { $sub->subscribe('t:u3') } }, qr/closed/, 'subscribe on it fails');

    my $new = run { $r->subscribe('t:u3') };
    ok(Scalar::Util::refaddr($new) != Scalar::Util::refaddr($sub),
        'the client makes a new subscription');
    is(run { $pub->publish('t:u3', 'again') }, 1, 'and it works');
    is(run { $new->next_message }->{message}, 'again', 'message on the new subscription');
};

subtest 'binary payloads and channel names' => sub {
    my $r   = client();
    my $ch  = "t:bin\0ch\xff";
    my $sub = run { $r->subscribe($ch) };
    my @payloads = ("a\0b\xff\xfe\r\n", '', "\0" x 3, join('', map { chr($_ % 256) } 0 .. 70_000));
    is(run { $pub->publish($ch, $_) }, 1, 'PUBLISH of ' . length($_) . ' bytes') for @payloads;
    for my $p (@payloads) {
        my $m = run { $sub->next_message };
        is($m->{channel}, $ch, 'channel with \0 and \xff intact');
        ok($m->{message} eq $p, 'payload of ' . length($p) . ' bytes intact');
        ok(!utf8::is_utf8($m->{message}), 'payload is bytes');
    }
};

subtest 'commands keep working while subscribed' => sub {
    for my $proto (3, 2) {
        my $r   = client(protocol => $proto);
        my $sub = run { $r->subscribe('t:cmd') };
        is(run { $r->set('t:cmd:k', 'v') }, 'OK', "RESP$proto: SET while subscribed");
        is(run { $r->get('t:cmd:k') }, 'v', "RESP$proto: GET while subscribed");
        # Commands and messages at once, on the client itself: every reply
        # to its command, every message to the subscription.
        my @f;
        for my $i (1 .. 50) {
            push @f, $r->publish('t:cmd', "msg$i"), $r->echo("e$i");
        }
        my @r = run { Future->needs_all(@f) };
        is(\@r, [map { (1, "e$_") } 1 .. 50], "RESP$proto: 100 replies, each its own");
        my @m = map { run { $sub->next_message } } 1 .. 50;
        is([map { $_->{message} } @m], [map {"msg$_"} 1 .. 50],
            "RESP$proto: 50 messages, in order, none taken for a reply");
        is($sub->stats->{buffered}, 0, 'nothing else buffered');
        is(run { $r->ping }, 'PONG', "RESP$proto: PING");
    }
};

subtest 'on_message' => sub {
    my $r   = client();
    my $sub = run { $r->subscribe('t:cb') };
    run { $pub->publish('t:cb', "early$_") } for 1 .. 3;
    ok(wait_until { $sub->stats->{buffered} == 3 }, 'three messages buffered');
    my @got;
    my $ret = $sub->on_message(sub {
        my ($s, $m) = @_;
        ref_is($s, $sub, 'the callback gets the subscription');
        push @got, $m->{message};
    });
    ref_is($ret, $sub, 'on_message returns the subscription');
    is(\@got, ['early1', 'early2', 'early3'], 'buffered messages handed over at once, in order');
    like(dies { run { $sub->next_message } }, qr/on_message/, 'next_message refused meanwhile');
    run { $pub->publish('t:cb', "live$_") } for 1 .. 3;
    ok(wait_until { @got == 6 }, 'new messages reach the callback');
    is([@got[3 .. 5]], ['live1', 'live2', 'live3'], 'in order');

    my @warn;
    local $SIG{__WARN__} = sub { push @warn, $_[0] };
    $sub->on_message(sub { die "boom\n" if $_[1]{message} eq 'die'; push @got, $_[1]{message} });
    run { $pub->publish('t:cb', $_) } for 'die', 'after';
    ok(wait_until { $got[-1] eq 'after' }, 'a message after one whose callback died');
    like(\@warn, [qr/on_message callback died: boom/], 'the death was warned about');

    $sub->on_message(undef);
    run { $pub->publish('t:cb', 'pulled') };
    is(run { $sub->next_message }->{message}, 'pulled', 'without a callback: next_message again');
};

subtest 'a bounded buffer: the oldest message goes' => sub {
    local $Future::IO::Redis::Subscription::MAX_BUFFERED = 5;
    my $r = client();
    my $sub = run { $r->subscribe('t:ovf') };
    my @over;
    $sub->on_overflow(sub { push @over, $_[1] });
    run { $pub->publish('t:ovf', "m$_") } for 1 .. 20;
    ok(wait_until { $sub->stats->{dropped} + $sub->stats->{buffered} == 20 }, 'all 20 read');
    is($sub->stats->{buffered}, 5,  'five kept');
    is($sub->stats->{dropped},  15, 'fifteen dropped');
    is(scalar @over, 1, 'on_overflow once for the episode');
    is([map { (run { $sub->next_message })->{message} } 1 .. 5], [map {"m$_"} 16 .. 20],
        'the newest five kept');
    run { $pub->publish('t:ovf', "n$_") } for 1 .. 7;
    ok(wait_until { $sub->stats->{dropped} == 17 }, 'the buffer overflowed again');
    is(scalar @over, 2, 'a new episode after it emptied: on_overflow again');
};

subtest 'errors' => sub {
    my $r = client();
    like(dies { run { $r->subscribe() } }, qr/no names/, 'subscribe with no names fails');
    run { $pub->command('ACL', 'SETUSER', 't:limited', 'on', '>pw', '~*', '+@all',
        'resetchannels', '&t:ok*') };
    my $l = client(username => 't:limited', password => 'pw');
    my $e = dies { run { $l->subscribe('t:forbidden') } };
    isa_ok($e, 'Future::IO::Redis::Error::Redis');
    like("$e", qr/NOPERM/, 'an ACL refusal fails the subscribe with the server\'s words');
    my $sub = $l->{_subscription};
    is([$sub->channels], [], 'the refused channel is not held');
    run { $l->subscribe('t:ok1') };
    is([$sub->channels], ['t:ok1'], 'an allowed channel is');
    is(run { $pub->publish('t:ok1', 'fine') }, 1, 'and delivers');
    run { $pub->command('ACL', 'DELUSER', 't:limited') };
};

subtest 'next_message resolves undef once the client disconnects' => sub {
    for my $proto (3, 2) {
        my $ch  = "t:end$proto";
        my $r   = client(protocol => $proto);
        my $sub = run { $r->subscribe($ch) };
        my $f   = $sub->next_message;
        ok(!$f->is_ready, "RESP$proto: waiting for a message");
        $r->disconnect;
        ok(wait_until { $f->is_ready }, "RESP$proto: the pending future completed");
        is(scalar $f->get, undef, 'with undef');
        ok($sub->is_closed, 'the subscription is closed');
        my $g = $sub->next_message;
        ok($g->is_ready, 'next_message afterwards is ready at once');
        is(scalar $g->get, undef, 'with undef');
        ok(wait_until { numsub($pub, $ch) == 0 }, 'the server saw the subscriber go');
        run { $r->connect };
        is(numsub($pub, $ch), 0, 'a later connect does not subscribe the ended names again');
        my $s2 = run { $r->subscribe($ch) };
        is(run { $pub->publish($ch, 'back') }, 1, 'a new subscription after connect');
        is(run { $s2->next_message }->{message}, 'back', 'delivers');
    }
};

subtest 'freeing while subscribed' => sub {
    # The client freed with a pending next_message: it resolves with undef.
    {
        my $r   = client();
        my $sub = run { $r->subscribe('t:free1') };
        my $f   = $sub->next_message;
        undef $r;
        ok($f->is_ready, 'freeing the client completed the pending future');
        is(scalar $f->get, undef, 'with undef');
        ok($sub->is_closed, 'the subscription the test still holds is closed');
        is(run { $sub->next_message }, undef, 'and gives undef');
        like(dies { run { $sub->subscribe('x') } }, qr/closed/, 'subscribe on it fails');
        ok(wait_until { numsub($pub, 't:free1') == 0 }, 'the server saw the subscriber go');
    }
    # The client freed from inside its own message callback, with more
    # messages arriving.
    {
        my $r   = client();
        my $sub = run { $r->subscribe('t:free2') };
        my $n   = 0;
        $sub->on_message(sub { $n++; if ($n == 10) { undef $r; undef $sub } });
        weaken(my $wsub = $sub);
        run { Future->needs_all(map { $pub->publish('t:free2', "m$_") } 1 .. 200) };
        ok(wait_until { !$r }, 'the callback freed the client');
        ok(wait_until { numsub($pub, 't:free2') == 0 }, 'the server saw it go');
        is($n, 10, 'no message after the client was freed');
        ok(!$wsub, 'the subscription is gone too');
    }
    # The subscription closed (freed in aredis) while messages arrive.
    {
        my $r   = client();
        my $sub = run { $r->subscribe('t:free3') };
        my @f   = map { $pub->publish('t:free3', "m$_") } 1 .. 200;
        my $u   = $sub->unsubscribe;
        run { Future->needs_all(@f, $u) };
        ok($sub->is_closed, 'closed while messages were coming');
        is(run { $sub->next_message }, undef, 'its buffered messages went with it');
        is(run { $r->ping }, 'PONG', 'the client goes on');
        is(run { $pub->publish('t:free3', 'x') }, 0, 'nobody subscribed');
    }
    # Dropping the test's reference: the client keeps its subscription.
    {
        my $r = client();
        weaken(my $w = run { $r->subscribe('t:free4') });
        ok($w, 'the client holds its subscription');
        is(run { $pub->publish('t:free4', 'kept') }, 1, 'still subscribed');
        my $again = run { $r->subscribe('t:free4') };
        is(run { $again->next_message }->{message}, 'kept', 'and the message waited for it');
    }
};

subtest 'replay after a reconnect' => sub {
    my $r = client(reconnect => 1, reconnect_delay => 0.05, max_reconnect_delay => 0.2);
    my $sub = run { $r->subscribe('t:rp') };
    run { $r->psubscribe('t:rp.*') };
    run { $r->ssubscribe('t:rps') };
    my $reconnects = 0;
    $sub->on_reconnect(sub { $reconnects++ });
    my $f = $sub->next_message;
    $srv->restart;
    ok(wait_until { $reconnects == 1 }, 'on_reconnect ran after the replay');
    ok(!$sub->is_closed, 'the subscription is still open');
    ok(!$f->is_ready, 'the pending future still waits');
    my $p = client();
    ok(wait_until { numsub($p, 't:rp') == 1 }, 'the server has the channel again');
    is(run { $p->publish('t:rp', 'after') }, 1, 'PUBLISH after the restart reaches it');
    is(run { $f }, { type => 'message', channel => 't:rp', message => 'after' },
        'the future asked before the restart gets the message');
    is(run { $p->publish('t:rp.x', 'pat') }, 1, 'the pattern was replayed');
    is(run { $sub->next_message }->{pattern}, 't:rp.*', 'and delivers');
    is(run { $p->spublish('t:rps', 'sh') }, 1, 'the shard channel was replayed');
    is(run { $sub->next_message }->{type}, 'smessage', 'and delivers');
    is($sub->stats->{resubscribes}, 1, 'stats: one replay');
    is(run { $r->get('t:nothing') }, undef, 'the client\'s commands work after it');
};

done_testing;
