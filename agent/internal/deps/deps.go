// Package deps pins the modules the agent is built on while its packages
// are being written in parallel, so go.mod stays stable. Removed once every
// dependency is imported by real code.
package deps

import (
	_ "github.com/go-kit/log"
	_ "github.com/golang/snappy"
	_ "github.com/grafana/loki-client-go/loki"
	_ "github.com/grafana/loki/pkg/push"
	_ "github.com/hashicorp/go-multierror"
	_ "github.com/kelseyhightower/envconfig"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/collectors"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/prometheus/client_golang/prometheus/testutil"
	_ "github.com/prometheus/client_model/go"
	_ "github.com/prometheus/common/config"
	_ "github.com/prometheus/common/expfmt"
	_ "github.com/prometheus/common/model"
	_ "github.com/prometheus/prometheus/prompb"
	_ "github.com/stretchr/testify/assert"
	_ "github.com/stretchr/testify/require"
	_ "google.golang.org/protobuf/encoding/protowire"
	_ "google.golang.org/protobuf/proto"
)
