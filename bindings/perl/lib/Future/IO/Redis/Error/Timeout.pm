package Future::IO::Redis::Error::Timeout;

use strict;
use warnings;
use parent 'Future::IO::Redis::Error';

our $VERSION = '0.001';

1;

__END__

=head1 NAME

Future::IO::Redis::Error::Timeout - a connect timeout or a request timeout (request_timeout) expired

=head1 DESCRIPTION

A connect timeout or a request timeout (C<request_timeout>) expired. The command may still run on the server.

A subclass of L<Future::IO::Redis::Error>: C<message> and C<code> (aredis's
error name) are available.

=cut
