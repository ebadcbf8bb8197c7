package Future::IO::Redis::Loop;

# The Perl half of aredis's loop on Future::IO (see Redis.xs): aredis asks to
# watch descriptors and to sleep; this waits with Future::IO and calls back.
# Internal: nothing here is for applications.

use strict;
use warnings;

use Future::IO;

our $VERSION = '0.001';

# Readiness of a handle: Future::IO's public ready_for_read/ready_for_write
# where it has them (newer releases), else the implementation's (every
# Future::IO implementation provides them: its sysread and syswrite are built
# on them).
sub _impl { $Future::IO::IMPL // 'Future::IO::_DefaultImpl' }
sub _ready_for {
    my ($dir, $fh) = @_;
    my $m = $dir ? 'ready_for_write' : 'ready_for_read';
    return Future::IO->$m($fh) if Future::IO->can($m);
    return _impl()->$m($fh);
}

my %io;      # ptr => { fh, want, rf, wf }
my %timer;   # ptr => sleep future
my %wake;    # ptr => { fh, f }
my $kick;    # the pending sleep(0) that runs deferred callbacks

use constant { EV_READ => 1, EV_WRITE => 2 };

sub _io_new {
    my ($ptr, $fd) = @_;
    open(my $fh, '+<&=', $fd) or die "cannot open fd $fd: $!";
    $io{$ptr} = { fh => $fh, want => 0 };
    return;
}

sub _arm {
    my ($ptr, $e) = @_;
    if (($e->{want} & EV_READ) && !$e->{rf}) {
        $e->{rf} = _ready_for(0, $e->{fh})->on_done(sub {
            my $x = $io{$ptr} or return;
            delete $x->{rf};
            Future::IO::Redis::_XS::io_fire($ptr, EV_READ);
            my $y = $io{$ptr};
            _arm($ptr, $y) if $y;
        });
    }
    if (($e->{want} & EV_WRITE) && !$e->{wf}) {
        $e->{wf} = _ready_for(1, $e->{fh})->on_done(sub {
            my $x = $io{$ptr} or return;
            delete $x->{wf};
            Future::IO::Redis::_XS::io_fire($ptr, EV_WRITE);
            my $y = $io{$ptr};
            _arm($ptr, $y) if $y;
        });
    }
    if (!($e->{want} & EV_READ) && $e->{rf}) { (delete $e->{rf})->cancel }
    if (!($e->{want} & EV_WRITE) && $e->{wf}) { (delete $e->{wf})->cancel }
    return;
}

sub _io_set {
    my ($ptr, $events) = @_;
    my $e = $io{$ptr} or return;
    $e->{want} = $events;
    _arm($ptr, $e);
}

sub _io_free {
    my ($ptr) = @_;
    my $e = delete $io{$ptr} or return;
    $e->{rf}->cancel if $e->{rf};
    $e->{wf}->cancel if $e->{wf};
    close $e->{fh};
    return;
}

sub _timer_arm {
    my ($ptr, $secs) = @_;
    if (my $old = delete $timer{$ptr}) { $old->cancel }
    $timer{$ptr} = Future::IO->sleep($secs)->on_done(sub {
        delete $timer{$ptr};
        Future::IO::Redis::_XS::timer_fire($ptr);
    });
    return;
}

sub _timer_free {
    my ($ptr) = @_;
    if (my $f = delete $timer{$ptr}) { $f->cancel }
    return;
}

sub _kick {
    $kick = Future::IO->sleep(0)->on_done(sub {
        undef $kick;
        Future::IO::Redis::_XS::run_defers();
    });
    return;
}

sub _wake_arm {
    my ($ptr) = @_;
    my $w = $wake{$ptr} or return;
    $w->{f} = _ready_for(0, $w->{fh})->on_done(sub {
        my $x = $wake{$ptr} or return;
        delete $x->{f};
        Future::IO::Redis::_XS::wake_fire($ptr);
        _wake_arm($ptr);
    });
}

sub _wake_new {
    my ($ptr, $fd) = @_;
    open(my $fh, '<&=', $fd) or die "cannot open fd $fd: $!";
    $wake{$ptr} = { fh => $fh };
    _wake_arm($ptr);
    return;
}

sub _wake_free {
    my ($ptr) = @_;
    my $w = delete $wake{$ptr} or return;
    $w->{f}->cancel if $w->{f};
    close $w->{fh};
    return;
}

# A future of the running Future::IO implementation's class, so that ->get
# on it runs that event loop (IO::Async::Future needs its loop: ->new on an
# instance copies it).
my $proto;
sub new_future {
    $proto //= Future::IO->sleep(0);
    return $proto->new;
}

1;
