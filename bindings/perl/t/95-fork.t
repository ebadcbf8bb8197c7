use strict;
use warnings;
use Test2::V0;
use lib 't/lib';
use FIORTest;
use POSIX ();
use Future::IO::Redis;

# fork() with a connected client: the child works with a client of its own
# (a new one, or the inherited one, which connects anew), and never touches
# the parent's connection; the parent goes on as before.

plan skip_all => 'no fork here' if $^O eq 'MSWin32';

my $srv = start_server();
my $port = $srv->port;
my @parent_errors;
my $r = Future::IO::Redis->new(host => '127.0.0.1', port => $port,
    on_error => sub { push @parent_errors, "$_[1]" });
run { $r->connect };
run { $r->set('f:k', 'parent-value') };
my $my_id = run { $r->client_id };

# Run $code in a child; it returns a list of strings, handed back through a
# pipe. The child ends with _exit (no test output, no END blocks) unless
# $normal_exit, where it exits as a program does.
sub in_child {
    my ($code, $normal_exit) = @_;
    pipe(my $rd, my $wr) or die "pipe: $!";
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        close $rd;
        my @out = eval { $code->() };
        push @out, "DIED: $@" if $@;
        print {$wr} map {"$_\n"} @out;
        close $wr;
        if ($normal_exit) {
            # what a program that just ends does: global destruction frees
            # the inherited client in the child
            Test2::API::test2_stack()->top->set_no_ending(1) if Test2::API->can('test2_stack');
            $SIG{__WARN__} = sub { };
            exit 0;
        }
        POSIX::_exit(0);
    }
    close $wr;
    my @lines = <$rd>;
    chomp @lines;
    waitpid $pid, 0;
    return ($?, @lines);
}

subtest 'the child makes a new client and works' => sub {
    my ($status, @out) = in_child(sub {
        my $c = Future::IO::Redis->new(host => '127.0.0.1', port => $port);
        run { $c->connect };
        my $v = run { $c->get('f:k') };
        run { $c->set('f:child', "from $$") };
        my $id = run { $c->client_id };
        return ($v, $id);
    });
    is($status, 0, 'the child exited cleanly');
    is($out[0], 'parent-value', 'the child read with its own client');
    isnt($out[1], $my_id, 'on a connection of its own');
    like(run { $r->get('f:child') }, qr/^from \d+$/, 'the parent sees what the child wrote');
};

subtest 'the parent\'s client still works after the child exits' => sub {
    is(run { $r->ping }, 'PONG', 'PING');
    is(run { $r->get('f:k') }, 'parent-value', 'GET');
    is(run { $r->client_id }, $my_id, 'on the same connection');
    is($r->stats->{connects}, 1, 'never reconnected');
    is(\@parent_errors, [], 'no error in the parent');
};

subtest 'the inherited client in the child connects anew' => sub {
    my ($status, @out) = in_child(sub {
        my $v = run { $r->get('f:k') };
        my $id = run { $r->client_id };
        my @many = run { Future->needs_all(map { $r->echo("c$_") } 1 .. 50) };
        return ($v, $id, join(',', @many));
    });
    is($status, 0, 'the child exited cleanly');
    is($out[0], 'parent-value', 'the inherited client works in the child');
    isnt($out[1], $my_id, 'on its own new connection, not the parent\'s');
    is($out[2], join(',', map {"c$_"} 1 .. 50), 'replies in order');
    is(run { $r->client_id }, $my_id, 'the parent keeps its connection');
    is(run { $r->echo('parent-after') }, 'parent-after', 'and its replies');
    is(\@parent_errors, [], 'no error in the parent');
};

subtest 'a child that exits normally (global destruction) sends nothing on the parent\'s connection' => sub {
    my ($status, @out) = in_child(sub {
        my $c = Future::IO::Redis->new(host => '127.0.0.1', port => $port);
        run { $c->connect };
        return (run { $c->ping });
    }, 1);
    is($status, 0, 'the child exited 0');
    is($out[0], 'PONG', 'it worked');
    is(run { $r->ping }, 'PONG', 'the parent\'s client still works');
    is(run { $r->client_id }, $my_id, 'same connection');
    ok(wait_until { my $l = run { $r->client_list }; 1 == (() = $l =~ /^id=/mg) },
        'the child\'s connection went with it: only the parent\'s is left on the server');
};

subtest 'many children at once' => sub {
    my @kids;
    for my $i (1 .. 4) {
        pipe(my $rd, my $wr) or die;
        my $pid = fork // die;
        if (!$pid) {
            close $rd;
            my $ok = eval {
                my $c = Future::IO::Redis->new(host => '127.0.0.1', port => $port);
                run { $c->connect };
                run { $c->incrby('f:sum', $i) } for 1 .. 25;
                1;
            };
            print {$wr} $ok ? "ok\n" : "DIED: $@\n";
            close $wr;
            POSIX::_exit(0);
        }
        close $wr;
        push @kids, [$pid, $rd];
    }
    # the parent works meanwhile
    my @mine = map { $r->echo("p$_") } 1 .. 50;
    is([run { Future->needs_all(@mine) }], [map {"p$_"} 1 .. 50], 'the parent\'s commands meanwhile');
    for my $k (@kids) {
        my $rd = $k->[1];
        my $line = <$rd>;
        waitpid $k->[0], 0;
        is($line, "ok\n", "child $k->[0]");
    }
    is(run { $r->get('f:sum') }, 25 * (1 + 2 + 3 + 4), 'every child\'s writes arrived');
};

done_testing;
