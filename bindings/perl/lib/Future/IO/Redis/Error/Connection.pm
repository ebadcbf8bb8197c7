package Future::IO::Redis::Error::Connection;

use strict;
use warnings;
use parent 'Future::IO::Redis::Error';

our $VERSION = '0.001';

1;

__END__

=head1 NAME

Future::IO::Redis::Error::Connection - the connection failed: refused, reset, closed by the server, a host name that does not resolve, a TLS failure

=head1 DESCRIPTION

The connection failed: refused, reset, closed by the server, a host name that does not resolve, a TLS failure.

A subclass of L<Future::IO::Redis::Error>: C<message> and C<code> (aredis's
error name) are available.

=cut
