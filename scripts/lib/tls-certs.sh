# Throwaway TLS material for the benchmark scripts (sourced, not run).
#
#   make_certs DIR
#
# writes into DIR, with openssl: a CA (ca.pem, ca.key), a server certificate
# signed by it for IP 127.0.0.1 and DNS localhost (server.pem, server.key:
# PKCS#8) and bundle.pem (certificate then key, as HAProxy's `crt` takes it).
# All keys are ECDSA P-256, as rcgen makes them by default (the harness's
# certificates), valid for 2 days. Nothing here is secret: DIR is the
# script's temp dir, removed at exit.

make_certs() {
    local d="$1"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$d/ca.key" -out "$d/ca.pem" -days 2 -subj "/CN=reloadbench bench CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$d/server.key" -out "$d/server.csr" -subj "/CN=localhost" 2>/dev/null
    printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >"$d/server.ext"
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
        -CAcreateserial -days 2 -extfile "$d/server.ext" -out "$d/server.pem" 2>/dev/null
    cat "$d/server.pem" "$d/server.key" >"$d/bundle.pem"
    openssl verify -CAfile "$d/ca.pem" "$d/server.pem" >/dev/null
}
