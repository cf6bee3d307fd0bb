module github.com/scepca/scepca

go 1.26.0

require (
	github.com/google/go-cmp v0.7.0
	github.com/smallstep/pkcs7 v0.2.3
	go.etcd.io/bbolt v1.4.3
	golang.org/x/crypto v0.58.0
)

require (
	golang.org/x/sync v0.24.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)
