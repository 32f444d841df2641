/**
 * Endpoints: resolved, transport-level addresses with no node ID (docs/ARCHITECTURE.md#node-addresses-and-endpoints). A node address
 * resolves to one endpoint per IP, or to `{protocol, path: <id>}` when it has no hostname.
 *
 * @since 0.1.0
 */
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Ip from "./Ip.ts"
import * as NodeAddress from "./NodeAddress.ts"
import * as NodeId from "./NodeId.ts"

/**
 * A resolved address. `ip` holds canonical IP text (see `Ip.format`) or `""` when absent; fields
 * are not validated on construction (see {@link validate}) except the port range. Instances compare
 * and hash by value, so they work as `HashMap`/`HashSet` keys.
 */
export class Endpoint extends Schema.Class<Endpoint>("effect-p2p/Endpoint")({
  /** Transport protocol, e.g. `"mconn"`, `"tcp"`, `"memory"`. */
  protocol: Schema.String,
  /** Canonical IPv4 or IPv6 text, `""` for non-networked endpoints. */
  ip: Schema.String,
  /** Port, 0 when absent. Only meaningful with an IP. */
  port: NodeAddress.Port,
  /** Transport-specific path; for the memory transport, the node ID. */
  path: Schema.String
}) {}

/** Builds an endpoint; omitted fields default to `""` and port 0. Nothing is validated but the port range. */
export const make = (fields: {
  readonly protocol?: string
  readonly ip?: string
  readonly port?: number
  readonly path?: string
}): Endpoint => new Endpoint({ protocol: "", ip: "", port: 0, path: "", ...fields })

/** Why an endpoint is rejected. */
export type InvalidEndpointReason = "no_protocol" | "invalid_ip" | "port_without_ip" | "no_path_or_ip"

/** An endpoint that fails {@link validate}. `input` is its rendering; `message` says what is wrong. */
export class InvalidEndpoint extends Schema.TaggedError<InvalidEndpoint>()("InvalidEndpoint", {
  input: Schema.String,
  reason: Schema.Literals(["no_protocol", "invalid_ip", "port_without_ip", "no_path_or_ip"]),
  message: Schema.String
}) {}

/**
 * Checks an endpoint, in this order: "endpoint has no protocol", "invalid IP address" (an `ip`
 * that is not IPv4 or IPv6 text), "endpoint has port N but no IP", "endpoint has neither path nor
 * IP".
 */
export const validate = (e: Endpoint): Result.Result<Endpoint, InvalidEndpoint> => {
  const fail = (reason: InvalidEndpointReason, message: string) =>
    Result.fail(new InvalidEndpoint({ input: format(e), reason, message }))
  if (e.protocol === "") return fail("no_protocol", "endpoint has no protocol")
  if (e.ip !== "" && !Ip.isValid(e.ip)) return fail("invalid_ip", `invalid IP address ${JSON.stringify(e.ip)}`)
  if (e.port > 0 && e.ip === "") return fail("port_without_ip", `endpoint has port ${e.port} but no IP`)
  if (e.ip === "" && e.path === "") return fail("no_path_or_ip", "endpoint has neither path nor IP")
  return Result.succeed(e)
}

/**
 * The node address of the node `nodeId` at this endpoint: protocol and path are kept; with an IP,
 * the hostname is its canonical text (IPv4-mapped IPv6 as dotted IPv4) and the port is kept;
 * without one the port is dropped. `nodeId` is not validated.
 */
export const toNodeAddress = (e: Endpoint, nodeId: string): NodeAddress.NodeAddress =>
  e.ip === ""
    ? NodeAddress.make({ nodeId, protocol: e.protocol, path: e.path })
    : NodeAddress.make({
      nodeId,
      protocol: e.protocol,
      path: e.path,
      hostname: Option.getOrElse(Ip.canonical(e.ip), () => e.ip),
      port: e.port
    })

/**
 * Renders an endpoint as Go's `Endpoint.String()`: as a node address with no node ID, except that
 * an endpoint with no IP whose path is a node ID renders as that node's address (`memory:<id>`).
 * E.g. `tcp://1.2.3.4:8080/path`, `tcp://[b10c::1]:8080`, `tcp://b10c::1`, `file:///foo`.
 */
export const format = (e: Endpoint): string => {
  if (e.ip === "") {
    const id = NodeId.decodeResult(e.path)
    if (Result.isSuccess(id)) return NodeAddress.format(toNodeAddress(e, id.success))
  }
  return NodeAddress.format(toNodeAddress(e, ""))
}
