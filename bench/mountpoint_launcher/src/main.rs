//! mount-s3-lite: mounts an S3 bucket with Mountpoint for Amazon S3's file system library
//! (mountpoint-s3-fs, live bucket listing through its Superblock), with the subset of
//! `mount-s3`'s options the benchmarks need and mount-s3's defaults for them. It always runs
//! in the foreground and unmounts on SIGINT/SIGTERM or `fusermount -u`.
//!
//! Credentials come from the usual AWS sources (AWS_ACCESS_KEY_ID, ... in the environment).
//! What it leaves out of mount-s3: daemonizing, jemalloc, syslog, metrics sinks, the event log,
//! Express One Zone caches, instance-type autoconfiguration (throughput target is fixed).

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};
use clap::Parser;
use mountpoint_s3_client::config::AddressingStyle;
use mountpoint_s3_client::user_agent::UserAgent;
use mountpoint_s3_fs::data_cache::{CacheLimit, DataCacheConfig, DiskDataCacheConfig, ManagedCacheDir};
use mountpoint_s3_fs::fs::{CacheConfig, TimeToLive};
use mountpoint_s3_fs::fuse::config::{FuseOptions, FuseSessionConfig, MountPoint};
use mountpoint_s3_fs::logging::{LoggingConfig, init_logging};
use mountpoint_s3_fs::memory::{CandidateSize, PagedPool};
use mountpoint_s3_fs::s3::config::{ClientConfig, MemoryLimitSetting, PartConfig, Region, TargetThroughputSetting};
use mountpoint_s3_fs::s3::{Bucket, Prefix, S3Path};
use mountpoint_s3_fs::{MountpointConfig, Runtime, S3FilesystemConfig, Superblock, SuperblockConfig};

#[derive(Parser, Debug)]
#[clap(version, about = "Mount an S3 bucket with mountpoint-s3-fs (foreground only)")]
struct Args {
    /// Name of the bucket to mount
    bucket: String,
    /// Directory to mount the bucket at
    directory: PathBuf,
    /// Accepted for mount-s3 compatibility: this launcher always runs in the foreground
    #[clap(short, long)]
    foreground: bool,
    /// Prefix inside the bucket to mount, ending in '/'
    #[clap(long, default_value = "")]
    prefix: String,
    /// AWS region of the bucket (the signing region when --endpoint-url is given)
    #[clap(long, default_value = "us-east-1")]
    region: String,
    /// S3 endpoint URL, e.g. http://127.0.0.1:9000
    #[clap(long)]
    endpoint_url: Option<String>,
    /// Force path-style addressing
    #[clap(long)]
    force_path_style: bool,
    /// Mount read-only
    #[clap(long)]
    read_only: bool,
    /// Enable caching of object content in this directory (as mount-s3 --cache)
    #[clap(long)]
    cache: Option<PathBuf>,
    /// Maximum size of the local cache in MiB [default: keep 5% of the disk free]
    #[clap(long)]
    max_cache_size: Option<u64>,
    /// Metadata TTL: seconds, 'minimal' or 'indefinite' [mount-s3's default: minimal, 60 with --cache]
    #[clap(long)]
    metadata_ttl: Option<TimeToLive>,
    /// Maximum number of FUSE daemon threads
    #[clap(long, default_value_t = 16)]
    max_threads: usize,
    /// Part size for GETs and multipart uploads, in bytes
    #[clap(long, default_value_t = 8 * 1024 * 1024)]
    part_size: usize,
    /// Target throughput of the S3 client in gigabits per second
    #[clap(long, default_value_t = TargetThroughputSetting::DEFAULT_TARGET_THROUGHPUT_GBPS)]
    maximum_throughput_gbps: f64,
    /// Memory target in MiB [default: 95% of total system memory, as mount-s3]
    #[clap(long)]
    max_memory_target: Option<u64>,
}

/// mount-s3's default memory target: 95% of MemTotal.
fn default_memory_target() -> Result<usize> {
    let meminfo = std::fs::read_to_string("/proc/meminfo")?;
    let kib: usize = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow!("no MemTotal in /proc/meminfo"))?;
    Ok(kib * 1024 / 100 * 95)
}

fn data_cache_config(args: &Args) -> Result<(DataCacheConfig, Option<ManagedCacheDir>)> {
    let Some(parent) = &args.cache else {
        return Ok((DataCacheConfig::default(), None));
    };
    let limit = match args.max_cache_size {
        Some(0) => return Err(anyhow!("--max-cache-size must be > 0")),
        Some(mib) => CacheLimit::TotalSize {
            max_size: (mib * 1024 * 1024) as usize,
        },
        None => CacheLimit::default(),
    };
    // Like mount-s3: a fresh subdirectory of the given one, removed again at unmount.
    let managed = ManagedCacheDir::new_from_parent_with_cache_key(parent, None, true)
        .context("failed to create cache directory")?;
    let disk = DiskDataCacheConfig {
        cache_directory: managed.as_path_buf(),
        block_size: 1024 * 1024,
        limit,
    };
    let config = DataCacheConfig {
        disk_cache_config: Some(disk),
        express_cache_config: None,
    };
    Ok((config, Some(managed)))
}

fn main() -> Result<()> {
    let args = Args::parse();
    let _logging = init_logging(LoggingConfig {
        log_file: None,
        log_to_stdout: true,
        default_filter: "warn,awscrt=off".to_string(),
    })?;

    let s3_path = S3Path::new(Bucket::new(&args.bucket)?, Prefix::new(&args.prefix)?);
    let ttl = args.metadata_ttl.unwrap_or(if args.cache.is_some() {
        TimeToLive::Duration(std::time::Duration::from_secs(60))
    } else {
        TimeToLive::Minimal
    });
    let fs_config = S3FilesystemConfig {
        cache_config: CacheConfig::new(ttl),
        read_only: args.read_only,
        ..Default::default()
    };
    let fuse_options = FuseOptions {
        read_only: args.read_only,
        ..Default::default()
    };
    let session_config = FuseSessionConfig::new(MountPoint::new(&args.directory)?, fuse_options, args.max_threads)?;
    let (cache_config, managed_cache_dir) = data_cache_config(&args)?;

    let mem_limit = match args.max_memory_target {
        Some(mib) => MemoryLimitSetting::User((mib * 1024 * 1024) as usize),
        None => MemoryLimitSetting::Default(default_memory_target()?),
    };
    let client_config = ClientConfig {
        region: Region::new_user_specified(args.region.clone()),
        endpoint_url: args.endpoint_url.clone(),
        addressing_style: if args.force_path_style {
            AddressingStyle::Path
        } else {
            AddressingStyle::Automatic
        },
        dual_stack: false,
        transfer_acceleration: false,
        auth_config: Default::default(),
        requester_pays: false,
        expected_bucket_owner: None,
        throughput_target: TargetThroughputSetting::User {
            gbps: args.maximum_throughput_gbps,
        },
        bind: None,
        part_config: PartConfig::with_part_size(args.part_size).validate(mem_limit)?,
        user_agent: UserAgent::new(Some("mount-s3-lite".to_string())),
        tls_config: None,
    };
    let pool = PagedPool::config()
        .with_candidate_sizes([CandidateSize::new(client_config.part_config.read_size_bytes)])
        .with_memory_limit(mem_limit.bytes())
        .build();
    let client = client_config
        .create_client(pool.clone(), Some(&s3_path))
        .context("failed to create S3 client")?;
    let runtime = Runtime::new(client.event_loop_group());
    let superblock = Superblock::new(
        client.clone(),
        s3_path,
        SuperblockConfig {
            cache_config: fs_config.cache_config.clone(),
            s3_personality: fs_config.s3_personality,
        },
    );
    let mut session = MountpointConfig::new(session_config, fs_config, cache_config)?
        .create_fuse_session(superblock, client, runtime, pool)
        .context("failed to create FUSE session")?;
    if let Some(dir) = managed_cache_dir {
        session.run_on_close(Box::new(move || drop(dir)));
    }
    eprintln!("{} mounted at {}", args.bucket, args.directory.display());
    session.join().context("FUSE session failed")
}
