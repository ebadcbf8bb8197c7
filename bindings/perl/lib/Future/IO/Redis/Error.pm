package Future::IO::Redis::Error;

use strict;
use warnings;

our $VERSION = '0.001';

use overload '""' => sub { $_[0]->message }, bool => sub { 1 }, fallback => 1;

# new(message => ..., code => 'AREDIS_ERR_...', ...)
sub new {
    my ($class, %args) = @_;
    $args{message} //= 'unknown error';
    return bless {%args}, $class;
}

sub message { $_[0]{message} }

# aredis's typed error name (AREDIS_ERR_TIMEOUT, ...), or undef.
sub code { $_[0]{code} }

sub throw {
    my $class = shift;
    die $class->new(@_);
}

1;

__END__

=head1 NAME

Future::IO::Redis::Error - base class of Future::IO::Redis's exceptions

=head1 SYNOPSIS

    use Future::AsyncAwait;
    my $ok = eval { await $redis->get('key'); 1 };
    if (!$ok && ref $@ && $@->isa('Future::IO::Redis::Error::Timeout')) { ... }

=head1 DESCRIPTION

Every failure of Future::IO::Redis is an object of a subclass of this
class, thrown by C<await> (or C<< ->get >>) on the failed future, and given
to C<on_error> callbacks. It stringifies to its message.

=over 4

=item L<Future::IO::Redis::Error::Connection> - the connection failed (refused, reset, closed by the server, name not resolved, TLS)

=item L<Future::IO::Redis::Error::Timeout> - a connect or request timeout

=item L<Future::IO::Redis::Error::Protocol> - the server sent something that is not RESP

=item L<Future::IO::Redis::Error::Redis> - the server answered with an error reply (WRONGTYPE, ERR, NOAUTH...)

=item L<Future::IO::Redis::Error::Disconnected> - the client is not connected (closed, disconnected, not yet connected), or the command was cancelled (the client went away, or it was the parent's, pending in a forked child)

=item Future::IO::Redis::Error itself - refused before anything was sent: a bad argument (C<undef>, a string with wide characters: C<code> C<AREDIS_ERR_INVALID>), a command the client does not send (C<AREDIS_ERR_UNSUPPORTED>), the queue full (C<AREDIS_ERR_QUEUE_FULL>)

=back

=head1 METHODS

=head2 message

The message, in words.

=head2 code

aredis's error name (C<AREDIS_ERR_TIMEOUT>, C<AREDIS_ERR_QUEUE_FULL>...),
when the error came from aredis.

=head2 throw

C<< Class->throw(message => ...) >> dies with a new object.

=cut
