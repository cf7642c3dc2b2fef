#!/bin/sh
# Throw-away TLS material for the client tests, in DIR:
#   ca.crt/key           the cluster CA
#   server.crt/key       127.0.0.1, signed by ca, valid now
#   expired.crt/key      127.0.0.1, signed by ca, expired in 2020
#   other-ca.crt/key     a CA that signed nothing we serve
set -eu
d=${1:?usage: tls-fixtures.sh DIR}
cd "$d"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=test-ca 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.crt -days 2 -subj /CN=other-ca 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' > san.ext
for n in server expired; do
	openssl req -newkey rsa:2048 -nodes -keyout $n.key -out $n.csr -subj /CN=127.0.0.1 2>/dev/null
done
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -set_serial 1 -days 2 -extfile san.ext -out server.crt 2>/dev/null
# openssl 3.0 cannot back-date with x509 -req: sign through `openssl ca`
mkdir -p db && : > db/index && echo 02 > db/serial
cat > ca.cnf <<CNF
[ca]
default_ca = t
[t]
database = db/index
serial = db/serial
new_certs_dir = db
default_md = sha256
policy = p
copy_extensions = none
[p]
commonName = supplied
[ext]
subjectAltName = IP:127.0.0.1
CNF
openssl ca -batch -config ca.cnf -cert ca.crt -keyfile ca.key -in expired.csr -out expired.crt \
	-startdate 20200101000000Z -enddate 20200102000000Z -extensions ext -notext 2>/dev/null
