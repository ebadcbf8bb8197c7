#!/bin/sh
# gen-test-certs.sh DIR — throwaway certificates for the TLS tests.
#
# Makes, with the openssl CLI (EC P-256 keys, fast):
#   ca.crt ca.key                 the test CA
#   server.crt server.key         signed by it; SAN DNS:localhost, IP:127.0.0.1, IP:::1
#   client.crt client.key         signed by it; for mutual TLS
#   other-ca.crt other-ca.key     an unrelated CA (the "wrong CA" test)
#   wrong-name.crt wrong-name.key signed by ca; SAN DNS:wrong.example only
#   expired.crt expired.key       signed by ca; right names, expired in 2001
#
# Nothing here is a secret: the tests make these at test time, in a temp dir,
# and no key is ever committed. Quiet unless something fails. Idempotent:
# files that already exist are kept (delete DIR to start over).
set -eu

dir=${1:?usage: gen-test-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"

OPENSSL=${OPENSSL:-openssl}
log=gen-test-certs.log
: >"$log"

run() {
    if ! "$OPENSSL" "$@" >>"$log" 2>&1; then
        echo "gen-test-certs.sh: openssl $1 failed in $dir:" >&2
        cat "$log" >&2
        exit 1
    fi
}

key() { # key NAME
    [ -s "$1.key" ] || run genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 \
        -out "$1.key"
    chmod 600 "$1.key"
}

ca() { # ca NAME SUBJECT
    key "$1"
    [ -s "$1.crt" ] || run req -new -x509 -key "$1.key" -out "$1.crt" -days 3650 \
        -subj "$2" -sha256 \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash"
}

# leaf NAME SUBJECT EXTFILE-CONTENT — a certificate signed by ca.
leaf() {
    key "$1"
    [ -s "$1.crt" ] && return 0
    run req -new -key "$1.key" -out "$1.csr" -subj "$2"
    printf '%s\n' "$3" >"$1.ext"
    run x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
        -out "$1.crt" -days 825 -sha256 -extfile "$1.ext"
    rm -f "$1.csr" "$1.ext"
}

server_ext="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"

ca ca "/O=aredis test/CN=aredis test CA"
ca other-ca "/O=aredis test/CN=aredis unrelated CA"

leaf server "/O=aredis test/CN=localhost" "$server_ext"
leaf client "/O=aredis test/CN=aredis test client" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
leaf wrong-name "/O=aredis test/CN=wrong.example" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:wrong.example"

# An expired server certificate: `openssl x509 -req` (3.0) cannot set a
# start date, but `openssl ca` can (-startdate/-enddate).
key expired
if [ ! -s expired.crt ]; then
    mkdir -p ca-db
    : >ca-db/index.txt
    [ -s ca-db/serial ] || echo 1000 >ca-db/serial
    cat >ca-db/ca.cnf <<EOF
[ca]
default_ca = test_ca
[test_ca]
database = ca-db/index.txt
serial = ca-db/serial
new_certs_dir = ca-db
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
x509_extensions = server_ext
[any]
organizationName = optional
commonName = supplied
[server_ext]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1,IP:::1
EOF
    run req -new -key expired.key -out expired.csr -subj "/O=aredis test/CN=localhost"
    run ca -batch -config ca-db/ca.cnf -cert ca.crt -keyfile ca.key -in expired.csr \
        -out expired.crt -startdate 20000101000000Z -enddate 20010101000000Z -notext
    rm -rf expired.csr ca-db
fi

rm -f ca.srl "$log"
