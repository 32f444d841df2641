import { Layer } from "effect"
import * as Endpoint from "../../src/domain/Endpoint.ts"
import * as TcpTransport from "../../src/layers/TcpTransport.ts"
import * as NodeIdentity from "../../src/layers/NodeIdentity.ts"
import * as TransportSuite from "../../src/testing/TransportSuite.ts"

TransportSuite.run({
  name: "tcp",
  live: true,
  environment: Layer.empty,
  transport: (key) => TcpTransport.layer({ host: "127.0.0.1", port: 0 }).pipe(Layer.provide(NodeIdentity.layer(key))),
  invalidEndpoints: [
    Endpoint.make({ protocol: "mconn" }),
    Endpoint.make({ protocol: "mconn", path: "foo" }),
    Endpoint.make({ protocol: "mconn", ip: "127.0.0.1", port: 1, path: "foo" }),
    Endpoint.make({ protocol: "mconn", ip: "255.255.255.255", port: 1 }),
    Endpoint.make({ protocol: "mconn", ip: "224.0.0.1", port: 1 }),
    Endpoint.make({ protocol: "mconn", ip: "1.2.3", port: 1 }),
    Endpoint.make({ protocol: "memory", path: "a".repeat(40) })
  ],
  aliasEndpoints: (listening) => [
    Endpoint.make({ protocol: "tcp", ip: listening.ip, port: listening.port }),
    Endpoint.make({ protocol: "mconn", ip: "0.0.0.0", port: listening.port })
  ]
})
