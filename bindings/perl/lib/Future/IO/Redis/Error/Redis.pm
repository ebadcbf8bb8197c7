package Future::IO::Redis::Error::Redis;

use strict;
use warnings;
use parent 'Future::IO::Redis::Error';

our $VERSION = '0.001';

# The error reply's first word: WRONGTYPE, ERR, NOSCRIPT, OOM...
sub type { $_[0]{type} }

# True for errors worth retrying (the server is loading, busy or read-only
# after a failover).
sub is_retryable {
    my $t = $_[0]{type} // '';
    return $t =~ /^(?:LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|READONLY)$/ ? 1 : 0;
}

sub from_message {
    my ($class, $msg) = @_;
    my ($type) = $msg =~ /^([A-Z][A-Z0-9_]*)\b/;
    return $class->new(message => $msg, type => $type // 'ERR', code => 'AREDIS_ERR_SERVER');
}

1;

__END__

=head1 NAME

Future::IO::Redis::Error::Redis - an error reply from the server

=head1 DESCRIPTION

The server answered the command with an error (C<-WRONGTYPE ...>,
C<-ERR ...>). The connection is fine and later commands go on. A refused
handshake is one too: credentials (C<type> C<WRONGPASS>, C<NOAUTH>,
C<NOPERM>; C<code> C<AREDIS_ERR_AUTH>) or another step such as C<SELECT>
(C<code> C<AREDIS_ERR_HANDSHAKE>) fail C<connect> with it. Inside a
pipeline's or a transaction's results, a command's error reply is one of
these objects in its slot, not a failure of the whole.

=head1 METHODS

=head2 message

The whole error reply: C<WRONGTYPE Operation against a key holding the wrong kind of value>,
with any credential the server quotes back (C<ACL SETUSER>, C<AUTH>...)
shown as C<< <redacted> >>.

=head2 type

Its first word: C<WRONGTYPE>, C<ERR>, C<NOSCRIPT>, C<OOM>...

=head2 is_retryable

True for LOADING, BUSY, TRYAGAIN, CLUSTERDOWN, MASTERDOWN and READONLY.

=cut
