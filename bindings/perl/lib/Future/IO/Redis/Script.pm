package Future::IO::Redis::Script;

use strict;
use warnings;

our $VERSION = '0.001';

use Digest::SHA ();
use Future;
use Scalar::Util ();

sub new {
    my ($class, %args) = @_;
    my $code = $args{code} // die "Future::IO::Redis::Script: no code\n";
    my $self = bless { redis => $args{redis}, script => $code, sha => Digest::SHA::sha1_hex($code) },
        $class;
    Scalar::Util::weaken($self->{redis});
    return $self;
}

sub sha    { $_[0]{sha} }
sub script { $_[0]{script} }

# EVALSHA, and when the server does not know the script (NOSCRIPT: a restart,
# SCRIPT FLUSH), EVAL once: the caller sees only the result.
sub call_with_keys {
    my ($self, $numkeys, @rest) = @_;
    my $redis = $self->{redis} or return Future->fail(
        Future::IO::Redis::Error::Disconnected->new(message => 'the client is gone'));
    return $redis->command('EVALSHA', $self->{sha}, $numkeys, @rest)->else(sub {
        my ($e) = @_;
        return Future->fail(@_)
            unless Scalar::Util::blessed($e) && $e->isa('Future::IO::Redis::Error::Redis')
            && ($e->type // '') eq 'NOSCRIPT';
        return $redis->command('EVAL', $self->{script}, $numkeys, @rest);
    });
}

# call(@args): no keys.
sub call { my $self = shift; $self->call_with_keys(0, @_) }

# run(\@keys, \@args)
sub run {
    my ($self, $keys, $args) = @_;
    my @k = @{ $keys // [] };
    return $self->call_with_keys(scalar @k, @k, @{ $args // [] });
}

# SCRIPT LOAD it now (a future of its SHA1).
sub load { my $self = shift; $self->{redis}->command('SCRIPT', 'LOAD', $self->{script}) }

1;

__END__

=head1 NAME

Future::IO::Redis::Script - a Lua script run by its SHA1

=head1 SYNOPSIS

    my $script = $redis->script('return redis.call("get", KEYS[1])');
    my $result = await $script->run(['mykey']);
    my $other  = await $script->call_with_keys(1, 'mykey', 'an argument');

=head1 DESCRIPTION

The script is sent with EVALSHA. When the server does not have it
(NOSCRIPT: it restarted, or its script cache was flushed) it is sent once
with EVAL, which also loads it: the caller sees only the result. Keys get
the client's C<prefix>; arguments never do.

=head1 METHODS

=head2 run(\@keys, \@args)

Run it with these keys and arguments (both array refs, either may be
omitted).

=head2 call_with_keys($numkeys, @keys, @args)

Run it, the first C<$numkeys> values after the count being keys, as EVAL
takes them.

=head2 call(@args)

Run it (C<call>: with no keys). A future of the script's result; a Lua
error fails it with a L<Future::IO::Redis::Error::Redis>.

=head2 load

SCRIPT LOAD it: a future of the SHA1.

=head2 sha, script

The SHA1 (hex) and the source.

=cut
