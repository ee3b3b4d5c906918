package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/shardkv/shardkv"
	"github.com/shardkv/shardkv/etcdkv"
	"github.com/shardkv/shardkv/server"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// clusterMaxValueSize is max-value-size in cluster mode unless it is set:
// the largest power of two whose CompareAndSwap (both values in one
// request, etcdkv.RequestBytes) fits etcd's default --max-request-bytes,
// 1.5 MiB.
const clusterMaxValueSize = 512 << 10

// etcdDefaultRequestBytes is etcd's default --max-request-bytes.
const etcdDefaultRequestBytes = 1536 << 10

// openCluster connects to the etcd cluster of cfg, checks that it answers
// within the dial timeout, and returns a store whose backend it is. The
// returned close closes the store, then the client.
func openCluster(log *slog.Logger, cfg config) (*shardkv.Store, func(), error) {
	maxValue := int64(clusterMaxValueSize)
	if cfg.set["max-value-size"] {
		maxValue = cfg.maxValueSize
	}
	need := etcdkv.RequestBytes(int(maxValue))
	ccfg := clientv3.Config{
		Endpoints:          cfg.etcdEndpoints,
		DialTimeout:        cfg.etcdDialTimeout,
		MaxCallSendMsgSize: need + 512<<10,
		Username:           cfg.etcdUser,
		Password:           cfg.etcdPassword,
		Logger:             zap.NewNop(), // failures come back as errors, logged here
	}
	if ccfg.Username != "" && ccfg.Password == "" {
		ccfg.Password = os.Getenv("SHARDKV_ETCD_PASSWORD")
	}
	tlsCfg, err := etcdTLS(cfg)
	if err != nil {
		return nil, nil, err
	}
	ccfg.TLS = tlsCfg
	cli, err := clientv3.New(ccfg)
	if err != nil {
		return nil, nil, fmt.Errorf("etcd: %w", err)
	}
	// The client dials in the background: one request tells whether the
	// cluster is there (and the credentials good) before clients come.
	ctx, cancel := context.WithTimeout(context.Background(), cfg.etcdDialTimeout)
	_, err = cli.Get(ctx, cfg.etcdNamespace, clientv3.WithCountOnly())
	cancel()
	if err != nil {
		cli.Close()
		return nil, nil, fmt.Errorf("etcd at %s did not answer within --etcd-dial-timeout (%s): %w",
			strings.Join(cfg.etcdEndpoints, " "), cfg.etcdDialTimeout, err)
	}
	// Keys are binary-safe, as in local mode, unless --strict-keys.
	validate := server.ValidateKey
	if cfg.strictKeys {
		validate = shardkv.ValidateKey
	}
	bopts := []etcdkv.Option{etcdkv.WithKeyValidator(validate)}
	if cfg.etcdNamespace != "" {
		bopts = append(bopts, etcdkv.WithNamespace(cfg.etcdNamespace))
	}
	if cfg.etcdSerializable {
		bopts = append(bopts, etcdkv.WithSerializableReads())
	}
	opts := append(server.StoreOptions(),
		shardkv.WithMaxValueSize(int(maxValue)),
		shardkv.WithBackend(etcdkv.New(cli, bopts...)))
	store := shardkv.New(opts...)

	var moot []string
	if cfg.set["max-keys"] {
		moot = append(moot, "max-keys")
	}
	if len(moot) > 0 {
		log.Warn("cluster mode: the key quota is etcd's (its --quota-backend-bytes), so these options do not apply", "ignored", moot)
	}
	log.Info("cluster mode: the data lives in etcd",
		"etcd_endpoints", strings.Join(cfg.etcdEndpoints, " "),
		"etcd_namespace", cfg.etcdNamespace,
		"serializable_reads", yesNo(cfg.etcdSerializable),
		"etcd_auth", yesNo(cfg.etcdUser != ""),
		"etcd_tls", yesNo(tlsCfg != nil))
	if need > etcdDefaultRequestBytes {
		log.Warn("cluster mode: etcd must run with a larger --max-request-bytes for values this long",
			"max_value_size", formatMemory(maxValue), "etcd_max_request_bytes_at_least", need)
	}
	return store, func() {
		store.Close()
		cli.Close()
	}, nil
}

// etcdTLS is the client's TLS configuration: nil (plain TCP) unless a
// certificate file is given or an endpoint is https.
func etcdTLS(cfg config) (*tls.Config, error) {
	https := false
	for _, e := range cfg.etcdEndpoints {
		https = https || strings.HasPrefix(e, "https://")
	}
	if !https && cfg.etcdCACert == "" && cfg.etcdCert == "" && cfg.etcdKey == "" {
		return nil, nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.etcdCACert != "" {
		pem, err := os.ReadFile(cfg.etcdCACert)
		if err != nil {
			return nil, fmt.Errorf("--etcd-cacert: %w", err)
		}
		t.RootCAs = x509.NewCertPool()
		if !t.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--etcd-cacert: no PEM certificate in %s", cfg.etcdCACert)
		}
	}
	if (cfg.etcdCert == "") != (cfg.etcdKey == "") {
		return nil, errors.New("--etcd-cert and --etcd-key go together")
	}
	if cfg.etcdCert != "" {
		pair, err := tls.LoadX509KeyPair(cfg.etcdCert, cfg.etcdKey)
		if err != nil {
			return nil, fmt.Errorf("--etcd-cert/--etcd-key: %w", err)
		}
		t.Certificates = []tls.Certificate{pair}
	}
	return t, nil
}
