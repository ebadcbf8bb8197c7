use strict;
use warnings;
use Test2::V0;
use lib 't/lib';
use FIORTest;
use File::Temp ();
use Future::IO::Redis;

# debug => 1: aredis's log on stderr, every command as sent, and never a
# password: not in the log, not in an error.

my $PW    = 'Pw-requirepass-7731';
my $WRONG = 'Pw-wrong-4410';
my $NEWPW = 'Pw-config-set-9120';
my $ACLPW = 'Pw-acl-user-5502';
my $RMPW  = 'Pw-acl-remove-6623';
my @secrets = ($PW, $WRONG, $NEWPW, $ACLPW, $RMPW);

my $srv = start_server(extra => ['--requirepass', $PW]);
my $port = $srv->port;

# Run $code with fd 2 (STDERR: Perl's warn and anything C writes) going to
# a file; returns what was written.
sub capture_stderr {
    my ($code) = @_;
    my $tmp = File::Temp->new;
    open(my $save, '>&', \*STDERR) or die "dup: $!";
    open(STDERR, '>', $tmp->filename) or die "reopen: $!";
    my $fd = fileno STDERR;
    my $ok = eval { $code->(); 1 };
    my $err = $@;
    open(STDERR, '>&', $save) or die "restore: $!";
    die $err unless $ok;
    die "STDERR was not fd 2 ($fd)" unless $fd == 2;
    open(my $in, '<', $tmp->filename) or die $!;
    local $/;
    return scalar <$in>;
}

subtest 'without debug: nothing on stderr' => sub {
    my $out = capture_stderr(sub {
        my $r = Future::IO::Redis->new(host => '127.0.0.1', port => $port, password => $PW);
        run { $r->connect };
        run { $r->ping };
    });
    is($out, '', 'silent');
};

my @errors;
my $out = capture_stderr(sub {
    my $r = Future::IO::Redis->new(host => '127.0.0.1', port => $port, password => $PW, debug => 1);
    run { $r->connect };
    run { $r->ping };
    run { $r->set('dbg:k', 'v') };
    run { $r->command('AUTH', $PW) };
    run { $r->acl_setuser('bob', 'on', ">$ACLPW", '~*', '+@all') };
    push @errors, dies { run { $r->acl_setuser('bob', "<$RMPW") } };
    push @errors, dies { run { $r->command('AUTH', 'bob', $WRONG) } };
    my $bob = Future::IO::Redis->new(uri => "redis://bob:$ACLPW\@127.0.0.1:$port", debug => 1);
    run { $bob->connect };
    run { $bob->ping };
    my $bad = Future::IO::Redis->new(host => '127.0.0.1', port => $port, password => $WRONG, debug => 1);
    push @errors, dies { run { $bad->connect } };
    my $badu = Future::IO::Redis->new(uri => "redis://bob:$WRONG\@127.0.0.1:$port", debug => 1);
    push @errors, dies { run { $badu->connect } };
    run { $r->config_set('requirepass', $NEWPW) };
    run { $r->config_set('requirepass', $PW) };
    my $p = $r->pipeline;
    $p->command('AUTH', $PW)->ping;
    push @errors, dies { run { $p->execute } };    # AUTH is refused in a pipeline
    run { $r->multi(sub { $_[0]->config_set('masterauth', $NEWPW) }) };
});

subtest 'debug => 1 logs' => sub {
    like($out, qr/command: PING/, 'commands are logged');
    like($out, qr/command: SET dbg:k v/, 'with their arguments');
    like($out, qr/connected to 127\.0\.0\.1:$port/, 'connects are logged');
    like($out, qr/<redacted>/, 'secrets are shown as <redacted>');
    like($out, qr/could not connect .*WRONGPASS/, 'a refused connect is logged');
    like($out, qr/\[REDIS DEBUG\]/, 'lines are marked');
};

subtest 'no password in stderr' => sub {
    for my $s (@secrets) {
        unlike($out, qr/\Q$s\E/, "no '$s' in the log");
    }
};

subtest 'no password in errors' => sub {
    is(scalar(grep { defined } @errors), 5, 'five errors');
    for my $e (@errors) {
        for my $s (@secrets) {
            unlike("$e", qr/\Q$s\E/, "no secret in: $e");
        }
    }
};

subtest 'debug => a code ref' => sub {
    my @lines;
    my $r = Future::IO::Redis->new(host => '127.0.0.1', port => $port, password => $PW,
        debug => sub { push @lines, [@_] });
    my $quiet = capture_stderr(sub {
        run { $r->connect };
        run { $r->echo('to-the-logger') };
    });
    ok((grep { $_->[0] eq 'debug' && $_->[1] =~ /command: ECHO to-the-logger/ } @lines),
        'the logger gets (level, line)');
    ok((grep { $_->[0] eq 'info' } @lines), 'info lines too');
    is($quiet, '', 'and nothing goes to stderr');
    ok(!(grep { $_->[1] =~ /\Q$PW\E/ } @lines), 'no password');

    my $dies = Future::IO::Redis->new(host => '127.0.0.1', port => $port, password => $PW,
        debug => sub { die "logger died\n" });
    run { $dies->connect };
    is(run { $dies->ping }, 'PONG', 'a logger that dies does not break the client');
};

done_testing;
