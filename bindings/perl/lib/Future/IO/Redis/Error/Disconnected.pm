package Future::IO::Redis::Error::Disconnected;

use strict;
use warnings;
use parent 'Future::IO::Redis::Error';

our $VERSION = '0.001';

1;

__END__

=head1 NAME

Future::IO::Redis::Error::Disconnected - the client is not connected: never connected, disconnected, closed, or the command was cancelled when the client went away

=head1 DESCRIPTION

The client is not connected: never connected, disconnected, closed, or the command was cancelled when the client went away.

A subclass of L<Future::IO::Redis::Error>: C<message> and C<code> (aredis's
error name) are available.

=cut
