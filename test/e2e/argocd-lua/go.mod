module secretsync.test/argocd-lua

go 1.22

require (
	github.com/evanphx/json-patch v5.9.0+incompatible
	github.com/yuin/gopher-lua v1.1.1
	layeh.com/gopher-json v0.0.0-20201124131017-552bb3c4c3bf
)

require github.com/pkg/errors v0.9.1 // indirect
