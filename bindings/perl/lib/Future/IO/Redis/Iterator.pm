package Future::IO::Redis::Iterator;

use strict;
use warnings;

our $VERSION = '0.001';

use Future;

sub new {
    my ($class, %args) = @_;
    return bless {
        redis   => $args{redis},
        command => $args{command} // 'SCAN',
        key     => $args{key},
        match   => $args{match},
        count   => $args{count},
        type    => $args{type},
        cursor  => 0,
        done    => 0,
    }, $class;
}

# The next batch: an array ref (maybe empty while the walk goes on), or
# undef once it has ended. HSCAN/ZSCAN batches are flat field/value lists.
sub next {
    my ($self) = @_;
    return Future->done(undef) if $self->{done};
    my @args = $self->{command} eq 'SCAN' ? ($self->{cursor}) : ($self->{key}, $self->{cursor});
    push @args, MATCH => $self->{match} if defined $self->{match};
    push @args, COUNT => $self->{count} if defined $self->{count};
    push @args, TYPE  => $self->{type}  if defined $self->{type} && $self->{command} eq 'SCAN';
    return $self->{redis}->command($self->{command}, @args)->then(sub {
        my ($r) = @_;
        my ($cursor, $batch) = @$r;
        $self->{cursor} = $cursor;
        $self->{done} = 1 if $cursor eq '0';
        return Future->done($batch && @$batch ? $batch : $self->{done} ? undef : []);
    });
}

sub reset  { $_[0]{cursor} = 0; $_[0]{done} = 0; return }
sub cursor { $_[0]{cursor} }
sub done   { $_[0]{done} }

1;

__END__

=head1 NAME

Future::IO::Redis::Iterator - SCAN, HSCAN, SSCAN and ZSCAN as iterators

=head1 SYNOPSIS

    my $iter = $redis->scan_iter(match => 'user:*', count => 100);
    while (my $keys = await $iter->next) {
        for my $key (@$keys) { ... }
    }
    my $fields = $redis->hscan_iter('myhash');   # field, value, field, value...

=head1 DESCRIPTION

Each C<next> sends one SCAN-family command with the cursor the last one
returned; it resolves with the batch, an array ref (possibly empty while
the walk goes on), and with undef once the cursor is back to 0. As with the
server's SCAN, an element may come twice, and elements added or removed
during the walk may or may not be seen.

=head1 METHODS

=head2 next

A future of the next batch: an array ref of keys (or, for HSCAN and ZSCAN,
a flat list of field and value, member and score), possibly empty while
the walk goes on; undef once it has ended. A failed SCAN fails it with the
command's error; the cursor stays where it was, so C<next> may be called
again.

=head2 reset

Start again from cursor 0.

=head2 cursor, done

The cursor the server gave last, and whether the walk has ended.

=cut
