package Future::IO::Redis::Error::Protocol;

use strict;
use warnings;
use parent 'Future::IO::Redis::Error';

our $VERSION = '0.001';

1;

__END__

=head1 NAME

Future::IO::Redis::Error::Protocol - the server sent bytes that are not RESP

=head1 DESCRIPTION

The server sent bytes that are not RESP. The connection is dropped.

A subclass of L<Future::IO::Redis::Error>: C<message> and C<code> (aredis's
error name) are available.

=cut
