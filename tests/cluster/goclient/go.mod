module github.com/garbagetruck/garbagetruck/tests/cluster/goclient

go 1.23

require github.com/garbagetruck/garbagetruck/sdk/go v0.0.0

require (
	github.com/pebbe/zmq4 v1.4.0 // indirect
	github.com/vmihailenco/msgpack/v5 v5.4.1 // indirect
	github.com/vmihailenco/tagparser/v2 v2.0.0 // indirect
)

replace github.com/garbagetruck/garbagetruck/sdk/go => ../../../sdk/go
