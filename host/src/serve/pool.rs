//! The service, its configuration, its scratch buffers and its pool of
//! sockets.

use smoltcp::iface::SocketSet;
use smoltcp::socket::tcp;

use multiserve::{Config, Framing, FullPolicy, Peers, Resources, Reverse, Server, Status};

use super::args::StatusPeers;
use super::{to_smol, Args};
use crate::service::HostService;
use crate::{FramingKind, ServiceKind, WhenFull};

/// The most clients `--clients` can ask for.
pub const MAX_CLIENTS: usize = 64;
/// The compiled pool: the most clients plus their default spare sockets.
pub const POOL: usize = MAX_CLIENTS + MAX_CLIENTS / 2;

/// The server of the service chosen by `--service`.
pub type AppServer<'a> = Server<'a, HostService, POOL>;

/// Status clients served at once.
const STATUS_CLIENTS: usize = 2;
/// The status server's pool: its clients and one spare socket.
pub const STATUS_POOL: usize = STATUS_CLIENTS + 1;
/// The rows a status snapshot lists: every socket of both pools.
pub const STATUS_ROWS: usize = POOL + STATUS_POOL;
/// A status socket's buffers: requests are short, snapshots long (about
/// 150 bytes a socket in JSON; longer ones are sent over several steps).
const STATUS_RX: usize = 512;
const STATUS_TX: usize = 16 * 1024;

/// The server of the status service.
pub type StatusServer<'a> = Server<'a, Status<STATUS_ROWS>, STATUS_POOL>;

/// A server's scratch buffers: what a service reads from and writes to.
pub struct Scratch {
    input: Vec<u8>,
    output: Vec<u8>,
}

impl Scratch {
    fn new(input: usize, output: usize) -> Scratch {
        Scratch {
            input: vec![0; input],
            output: vec![0; output],
        }
    }
}

/// The scratch buffers of the service of `args`.
pub fn app_scratch(args: &Args) -> Scratch {
    let len = args.socket_buffer.max(args.max_line + 64);
    Scratch::new(len, len)
}

/// The scratch buffers of the status service: a request, some records.
pub fn status_scratch() -> Scratch {
    Scratch::new(STATUS_RX, 4096)
}

/// The service `--service` (and `--framing`, `--max-line`) asks for.
pub fn service(args: &Args) -> HostService {
    match args.service {
        ServiceKind::Reverse => HostService::Reverse(Reverse::new(
            match args.framing {
                FramingKind::Line => Framing::Line,
                FramingKind::Chunk => Framing::Chunk,
            },
            args.max_line,
        )),
        ServiceKind::Echo => HostService::Echo(multiserve::Echo),
    }
}

/// The server configuration of `args`.
pub fn config(args: &Args) -> Config {
    Config {
        port: args.port,
        clients: Some(args.clients),
        spare: args.spare,
        queue_wait: to_smol(args.queue_wait),
        when_full: match args.when_full {
            WhenFull::Busy => FullPolicy::Busy,
            WhenFull::Reset => FullPolicy::Reset,
        },
        idle_timeout: args.idle_timeout.0.map(to_smol),
        timestamps: !args.no_timestamps,
        ..Config::default()
    }
}

/// The server of `args`, its sockets added to `sockets`.
pub fn app_server<'a>(
    args: &Args,
    scratch: &'a mut Scratch,
    sockets: &mut SocketSet<'a>,
) -> Result<AppServer<'a>, String> {
    let config = config(args);
    let (clients, spare) = config.split(POOL).ok_or_else(|| {
        format!(
            "{} clients and their spare sockets do not fit the pool of {POOL}",
            args.clients
        )
    })?;
    let pool = pool(clients + spare, args.socket_buffer);
    server(config, service(args), pool, scratch, sockets)
}

/// The status server on `--status-port` (none with `off`): 2 clients and
/// 1 spare socket, with the timeouts of `args`.
pub fn status_server<'a>(
    args: &Args,
    scratch: &'a mut Scratch,
    sockets: &mut SocketSet<'a>,
) -> Result<Option<StatusServer<'a>>, String> {
    let Some(port) = args.status_port.0 else {
        return Ok(None);
    };
    if port == args.port {
        return Err(format!(
            "the status port {port} is the service's port too; give --status-port another one"
        ));
    }
    let config = Config {
        port,
        clients: Some(STATUS_CLIENTS),
        spare: Some(STATUS_POOL - STATUS_CLIENTS),
        peers: Some(match args.status_peers {
            StatusPeers::Local => Peers::LocalSubnets,
            StatusPeers::Any => Peers::Any,
        }),
        ..self::config(args)
    };
    let pool = std::array::from_fn(|_| {
        tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; STATUS_RX]),
            tcp::SocketBuffer::new(vec![0; STATUS_TX]),
        )
    });
    server(config, Status::new(), pool, scratch, sockets).map(Some)
}

/// A server of `service` over `pool`.
fn server<'a, S: multiserve::Service, const N: usize>(
    config: Config,
    service: S,
    pool: [tcp::Socket<'static>; N],
    scratch: &'a mut Scratch,
    sockets: &mut SocketSet<'a>,
) -> Result<Server<'a, S, N>, String> {
    let resources = Resources {
        pool,
        input: &mut scratch.input,
        output: &mut scratch.output,
    };
    Server::new(config, service, resources, sockets).map_err(|e| e.to_string())
}

/// `N` sockets, the first `in_use` with buffers of `len` bytes each way.
/// Sockets beyond those are never used: they get no buffers.
fn pool<const N: usize>(in_use: usize, len: usize) -> [tcp::Socket<'static>; N] {
    std::array::from_fn(|i| socket(if i < in_use { len } else { 0 }))
}

fn socket(len: usize) -> tcp::Socket<'static> {
    tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; len]),
        tcp::SocketBuffer::new(vec![0; len]),
    )
}
