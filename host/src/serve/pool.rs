//! The service, its configuration, its scratch buffers and its pool of
//! sockets.

use smoltcp::iface::{SocketSet, SocketStorage};
use smoltcp::socket::tcp;

use multiserve::{
    Config, Framing, FullPolicy, Peers, Resources, Reverse, Server, SlotStorage, Status,
};

use super::args::StatusPeers;
use super::{to_smol, Args};
use crate::service::HostService;
use crate::{FramingKind, ServiceKind, WhenFull};

/// The most clients `--clients` can ask for. The pool is sized at run
/// time (`--clients` + `--spare` sockets); this bounds the status
/// listing, which lists every socket.
pub const MAX_CLIENTS: usize = 4096;
/// The most spare sockets `--spare` can ask for: those of the default
/// for the most clients (half of them).
pub const MAX_SPARE: usize = MAX_CLIENTS / 2;
/// The largest pool: the most clients and spare sockets.
pub const MAX_POOL: usize = MAX_CLIENTS + MAX_SPARE;

/// The server of the service chosen by `--service`.
pub type AppServer<'a> = Server<'a, HostService>;

/// Status clients served at once.
const STATUS_CLIENTS: usize = 2;
/// The status server's pool: its clients and one spare socket.
pub const STATUS_POOL: usize = STATUS_CLIENTS + 1;
/// The rows a status snapshot lists: every socket of both pools, at the
/// largest.
pub const STATUS_ROWS: usize = MAX_POOL + STATUS_POOL;
/// A status socket's buffers: requests are short, snapshots long (about
/// 150 bytes a socket in JSON; longer ones are sent over several steps).
const STATUS_RX: usize = 512;
const STATUS_TX: usize = 16 * 1024;

/// The server of the status service.
pub type StatusServer<'a> = Server<'a, Status<STATUS_ROWS>>;

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

/// The pool `args` ask for: `(clients, spare)` sockets, the spare ones
/// `--spare` or the default for the clients ([`Config::split`] of a pool
/// as large as they need).
pub fn pool_split(args: &Args) -> Result<(usize, usize), String> {
    config(args)
        .split(usize::MAX)
        .ok_or_else(|| format!("{} clients: at least 1 is needed", args.clients))
}

/// What the pool of `args` costs, in bytes, for `sockets` pool sockets:
/// per socket its receive and transmit buffers (`--socket-buffer` each
/// way), its socket-set entry and its server slot.
pub fn pool_cost(args: &Args, sockets: usize) -> PoolCost {
    let per_socket =
        2 * args.socket_buffer + core::mem::size_of::<SocketStorage>() + AppServer::SLOT_SIZE;
    PoolCost {
        sockets,
        per_socket,
        total: per_socket * sockets,
    }
}

/// What a pool costs, in bytes.
pub struct PoolCost {
    /// Sockets in the pool.
    pub sockets: usize,
    /// Bytes per socket: buffers, socket-set entry, server slot.
    pub per_socket: usize,
    /// Bytes of the whole pool.
    pub total: usize,
}

/// The server of `args`, its sockets added to `sockets`: a pool of
/// `--clients` + `--spare` sockets, sized now.
pub fn app_server<'a>(
    args: &Args,
    scratch: &'a mut Scratch,
    sockets: &mut SocketSet<'a>,
) -> Result<AppServer<'a>, String> {
    let (clients, spare) = pool_split(args)?;
    let len = args.socket_buffer;
    let pool = (0..clients + spare).map(|_| socket(len, len));
    server(config(args), service(args), pool, scratch, sockets)
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
    let pool = (0..STATUS_POOL).map(|_| socket(STATUS_RX, STATUS_TX));
    server(config, Status::new(), pool, scratch, sockets).map(Some)
}

/// A server of `service` over the sockets of `pool`, its slot storage
/// sized to them.
fn server<'a, S: multiserve::Service + 'a>(
    config: Config,
    service: S,
    pool: impl ExactSizeIterator<Item = tcp::Socket<'a>>,
    scratch: &'a mut Scratch,
    sockets: &mut SocketSet<'a>,
) -> Result<Server<'a, S>, String> {
    let storage: Vec<SlotStorage<S>> = (0..pool.len()).map(|_| SlotStorage::default()).collect();
    let resources = Resources {
        pool,
        storage: storage.into(),
        input: &mut scratch.input,
        output: &mut scratch.output,
    };
    Server::new(config, service, resources, sockets).map_err(|e| e.to_string())
}

/// A socket with buffers of `rx` and `tx` bytes.
fn socket(rx: usize, tx: usize) -> tcp::Socket<'static> {
    tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; rx]),
        tcp::SocketBuffer::new(vec![0; tx]),
    )
}
