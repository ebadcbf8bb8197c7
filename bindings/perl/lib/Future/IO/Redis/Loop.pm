package Future::IO::Redis::Loop;

# The Perl half of aredis's loop on Future::IO (see Redis.xs): aredis asks to
# watch descriptors and to sleep; this waits with Future::IO and calls back.
# Internal: nothing here is for applications.

use strict;
use warnings;

use Future;
use Future::IO;

our $VERSION = '0.001';

# Future::IO before 0.17 has no load_impl, which programs written for the
# reference design call (Future::IO->load_impl('IOAsync')): this gives them
# one that does the same (the first of the implementations named that
# loads).
if (!Future::IO->can('load_impl')) {
    no strict 'refs';
    *{'Future::IO::load_impl'} = sub {
        my ($class, @names) = @_;
        for my $name (@names) {
            my $module = $name =~ /::/ ? $name : "Future::IO::Impl::$name";
            (my $file = "$module.pm") =~ s{::}{/}g;
            return $module if eval { require $file; 1 };
        }
        die "Future::IO->load_impl: none of (@names) could be loaded\n";
    };
}

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

my %io;      # ptr => { fh, want, rf, wf, pid, dead }
my %timer;   # ptr => sleep future
my %wake;    # ptr => { fh, f, pid }
my $kick;    # the pending sleep(0) (or IO::Async later) that runs deferred callbacks

# On IO::Async (Future::IO::Impl::IOAsync) the loop's own primitives are used
# directly: a persistent watch_io per handle instead of a future per
# readiness, later() instead of sleep(0), and futures that run the loop
# themselves (Future::IO::Redis::Future). A readiness future, a sleep(0) and
# an IO::Async::Future cost 10-75 thousand instructions each.
my $IOA;     # the IO::Async::Loop; 0: another implementation; undef: not known yet
sub _ioa {
    return $IOA if defined $IOA;
    my $impl = $Future::IO::IMPL // return 0;
    $IOA = $impl eq 'Future::IO::Impl::IOAsync'
        ? do { require IO::Async::Loop; IO::Async::Loop->new } : 0;
    return $IOA;
}

use constant { EV_READ => 1, EV_WRITE => 2 };

# Readiness waits are never cancelled. Future::IO's implementations need
# not honour cancel() on them (Future::IO::Impl::IOAsync does not: the
# cancelled wait stays registered under the descriptor's number, and the
# next handle given that number is never watched). So each descriptor has
# at most one wait per direction outstanding; when it ends, the interest of
# the moment decides whether aredis hears of it and whether to wait again.
# A handle aredis has freed is closed only once its waits have ended.

sub _io_new {
    my ($ptr, $fd) = @_;
    open(my $fh, '+<&=', $fd) or die "cannot open fd $fd: $!";
    $io{$ptr} = { fh => $fh, want => 0, pid => $$ };
    _wake_arm($_) for keys %wake;
    return;
}

sub _arm {
    my ($ptr, $e) = @_;
    return if $e->{dead} || $e->{pid} != $$;
    if (my $l = _ioa()) { return _arm_ioa($l, $ptr, $e) }
    for my $dir (0, 1) {
        my ($slot, $ev) = $dir ? ('wf', EV_WRITE) : ('rf', EV_READ);
        next unless ($e->{want} & $ev) && !$e->{$slot};
        $e->{$slot} = _ready_for($dir, $e->{fh})->on_ready(sub { _fired($ptr, $e, $slot, $ev) });
    }
    return;
}

# IO::Async: watch while aredis wants; unwatch as soon as it does not.
sub _arm_ioa {
    my ($l, $ptr, $e) = @_;
    my ($want, $have) = ($e->{want}, $e->{watching} // 0);
    return if $want == $have;
    my (%on, %off);
    for my $ev (EV_READ, EV_WRITE) {
        my $k = $ev == EV_READ ? 'on_read_ready' : 'on_write_ready';
        if (($want & $ev) && !($have & $ev)) {
            $on{$k} = sub {
                # A copy inherited across fork(): the parent's socket (see _fired).
                if ($e->{pid} != $$) { _unwatch_ioa($l, $e); return }
                Future::IO::Redis::_XS::io_fire($ptr, $ev) if !$e->{dead} && ($e->{want} & $ev);
            };
        } elsif (!($want & $ev) && ($have & $ev)) {
            $off{$k} = 1;
        }
    }
    $e->{watching} = $want;
    $l->watch_io(handle => $e->{fh}, %on) if %on;
    $l->unwatch_io(handle => $e->{fh}, %off) if %off;
    return;
}

sub _unwatch_ioa {
    my ($l, $e) = @_;
    return unless $e->{watching};
    $l->unwatch_io(handle => $e->{fh}, on_read_ready => 1, on_write_ready => 1);
    $e->{watching} = 0;
}

sub _fired {
    my ($ptr, $e, $slot, $ev) = @_;
    delete $e->{$slot};
    return _reap($e) if $e->{dead};
    # A copy inherited across fork(): the socket is the parent's; aredis's
    # copy of the client is inert, and waiting again would spin on the
    # parent's unread data.
    return if $e->{pid} != $$;
    Future::IO::Redis::_XS::io_fire($ptr, $ev) if $e->{want} & $ev;
    my $cur = $io{$ptr};
    _arm($ptr, $cur) if $cur && $cur == $e;
    return;
}

sub _io_set {
    my ($ptr, $events) = @_;
    my $e = $io{$ptr} or return;
    $e->{want} = $events;
    _arm($ptr, $e);
}

# Close a freed handle once no wait is outstanding on it, and never from
# inside a wait's completion (the implementation still has the handle then).
my %closing;    # "$fh" => the sleep(0) after which it is closed
sub _close_soon {
    my ($fh) = @_;
    my $f = Future::IO->sleep(0);
    $closing{"$fh"} = $f;
    $f->on_ready(sub { delete $closing{"$fh"}; close $fh });
    return;
}

sub _reap {
    my ($e) = @_;
    return if $e->{rf} || $e->{wf} || $e->{closing};
    $e->{closing} = 1;
    _close_soon($e->{fh});
    return;
}

sub _io_free {
    my ($ptr) = @_;
    my $e = delete $io{$ptr} or return;
    $e->{dead} = 1;
    $e->{want} = 0;
    if (my $l = _ioa()) {
        # Unwatched now (IO::Async honours it), so closed now.
        _unwatch_ioa($l, $e);
        close $e->{fh};
        return;
    }
    if (($e->{rf} || $e->{wf}) && $e->{pid} == $$) {
        # aredis closes its descriptor right after this: shut the socket
        # down (what that close would do) so that the waits end now. Not in
        # a forked child: the socket is the parent's.
        shutdown($e->{fh}, 2);
    }
    _reap($e);
    return;
}

# (ptr, 0, seconds): the C side passes its arguments as (pointer, IV, NV).
sub _timer_arm {
    my ($ptr, undef, $secs) = @_;
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

my $run_defers = sub {
    undef $kick;
    Future::IO::Redis::_XS::run_defers();
};
sub _kick {
    if (my $l = _ioa()) { $kick = $l->later($run_defers); return }
    $kick = Future::IO->sleep(0)->on_done($run_defers);
    return;
}

# Run the deferred callbacks (aredis's write flush) now, and drop the kick
# that would have: a future about to be waited for needs its command on the
# wire, and the loop then needs no extra turn for it.
sub flush {
    if (defined $kick) {
        if ($IOA) { $IOA->unwatch_idle($kick) }
        else { $kick->cancel }
        undef $kick;
    }
    Future::IO::Redis::_XS::run_defers();
    return;
}

# The loop's wake-up (an eventfd, for aredis's cross-thread posts) is
# watched from the first handle on: by then the program has chosen its
# Future::IO implementation.
sub _wake_arm {
    my ($ptr) = @_;
    my $w = $wake{$ptr} or return;
    return if $w->{f} || $w->{pid} != $$;
    $w->{f} = _ready_for(0, $w->{fh})->on_ready(sub {
        my $x = $wake{$ptr};
        return unless $x && $x == $w;
        delete $w->{f};
        # A forked child shares the eventfd with its parent: leave it be.
        return if $w->{pid} != $$;
        Future::IO::Redis::_XS::wake_fire($ptr);
        _wake_arm($ptr);
    });
    return;
}

sub _wake_new {
    my ($ptr, $fd) = @_;
    open(my $fh, '<&=', $fd) or die "cannot open fd $fd: $!";
    $wake{$ptr} = { fh => $fh, pid => $$ };
    return;
}

sub _wake_free {
    my ($ptr) = @_;
    my $w = delete $wake{$ptr} or return;
    # Closed once its wait has ended, as for handles.
    if ($w->{f}) { $w->{f}->on_ready(sub { _close_soon($w->{fh}) }) }
    else         { close $w->{fh} }
    return;
}

# A future of the running Future::IO implementation's class, so that ->get
# on it runs that event loop (IO::Async::Future needs its loop: ->new on an
# instance copies it).
# (Asking Future::IO before the program has loaded an implementation would
# fix its minimal default one for good: not done.)
my $proto;
sub new_future {
    return Future->new unless defined $Future::IO::IMPL;
    return Future::IO::Redis::Future->new if $IOA // _ioa();
    $proto //= Future::IO->sleep(0);
    return $proto->new;
}

# True when the program has loaded a Future::IO implementation that can
# watch several handles at once (IO::Async's, UV's, Glib's...): aredis
# needs one.
sub have_impl {
    my $impl = $Future::IO::IMPL;
    return defined $impl && $impl->HAVE_MULTIPLE_FILEHANDLES ? 1 : 0;
}

# The futures of commands on IO::Async: plain Futures (an IO::Async::Future
# costs three times as much to make) whose await flushes the writes, then
# runs the IO::Async loop until they are ready.
package Future::IO::Redis::Future;
our @ISA = ('Future');
sub await {
    my $self = shift;
    return $self if $self->is_ready;
    Future::IO::Redis::Loop::flush();
    $IOA->loop_once until $self->is_ready;
    return $self;
}

1;

__END__

=head1 NAME

Future::IO::Redis::Loop - aredis's event loop on Future::IO (internal)

=head1 DESCRIPTION

Internal to L<Future::IO::Redis>: nothing here is for programs.

aredis drives its client through a loop interface (C<aredis_loop_vtable>,
F<include/aredis/loop.h>): watch a descriptor for reading or writing, arm
a timer, run deferred work, wake up from another thread. F<fio_core.c>
implements it by calling the functions of this package, which wait with
L<Future::IO> and call back into the XS when the wait ends:

=over 4

=item C<_io_new($ptr, $fd)>, C<_io_set($ptr, $events)>, C<_io_free($ptr)>

A descriptor (a duplicate of aredis's, which the handle made here owns),
the events aredis wants (1 read, 2 write), and its end. Readiness is
C<ready_for_read>/C<ready_for_write> of Future::IO (or of its
implementation, in Future::IO releases that do not export them); when one
ends, C<Future::IO::Redis::_XS::io_fire($ptr, $event)> runs aredis's
callback if it still wants that event, and the wait is made again while it
does. Waits are never cancelled, since implementations need not honour
it (Future::IO::Impl::IOAsync keeps a cancelled wait registered under the
descriptor's number, where the next handle given that number would never
be watched): a descriptor has at most one wait per direction, and a freed
one is closed only once its waits have ended, after shutting the socket
down so that they end at once (except in a forked child, whose socket is
the parent's).

=item C<_timer_arm($ptr, 0, $seconds)>, C<_timer_free($ptr)>

A C<< Future::IO->sleep >>; at its end C<timer_fire> runs the timer, or
sleeps again when aredis moved its deadline later. The C side asks for a
new sleep only when a deadline comes earlier than the one asked for.

=item C<_kick()>

One C<< Future::IO->sleep(0) >> per burst of deferred callbacks (aredis
flushes its writes in one); C<run_defers> runs them in order.

=item C<_wake_new($ptr, $fd)>, C<_wake_free($ptr)>

The loop's eventfd, for aredis's posts from other threads; watched from
the first descriptor on (by then the program has chosen its Future::IO
implementation).

=item C<new_future()>

A future of the implementation's class, so that C<get> and C<await> on the
futures the client returns run its loop.

=item C<have_impl()>

True when an implementation that can watch several handles is loaded,
checked without making Future::IO settle for its minimal default.

=back

It also gives Future::IO releases before 0.17 a C<load_impl>, which
programs written for the reference design call.

=cut
