package io.fleetdeck.minidfs;

import java.io.IOException;
import java.io.InputStream;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.permission.FsPermission;
import org.apache.hadoop.hdfs.HdfsConfiguration;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.hadoop.hdfs.server.datanode.DataNode;
import org.apache.hadoop.util.VersionInfo;

/**
 * A real NameNode and one DataNode with WebHDFS on 127.0.0.1, for fleetdeck's integration tests.
 *
 * <pre>
 * java -cp ... io.fleetdeck.minidfs.MiniDfs --basedir DIR [--rpc-port N] [--http-port N]
 *                                           [--wait stdin|signal]
 * </pre>
 *
 * A port of 0 picks a free one; the chosen ports are reported on one line on stdout:
 * {@code MINIDFS_READY {"rpcPort":...,"httpPort":...,...}}. The process then runs until stdin
 * closes ({@code --wait stdin}, the default) or until SIGTERM/SIGINT ({@code --wait signal}), and
 * shuts the cluster down cleanly either way.
 */
public final class MiniDfs {
  static final String READY = "MINIDFS_READY";

  private MiniDfs() {}

  public static void main(String[] args) throws Exception {
    String baseDir = null;
    int rpcPort = 0;
    int httpPort = 0;
    String waitFor = "stdin";
    for (int i = 0; i < args.length; i++) {
      String arg = args[i];
      if (i + 1 >= args.length) {
        usage("missing value for " + arg);
      }
      String value = args[++i];
      switch (arg) {
        case "--basedir" -> baseDir = value;
        case "--rpc-port" -> rpcPort = Integer.parseInt(value);
        case "--http-port" -> httpPort = Integer.parseInt(value);
        case "--wait" -> waitFor = value;
        default -> usage("unknown argument " + arg);
      }
    }
    if (baseDir == null) {
      usage("--basedir is required");
    }
    if (!waitFor.equals("stdin") && !waitFor.equals("signal")) {
      usage("--wait must be stdin or signal");
    }

    Configuration conf = new HdfsConfiguration();
    conf.set(MiniDFSCluster.HDFS_MINIDFS_BASEDIR, baseDir);
    conf.setBoolean("dfs.webhdfs.enabled", true);
    // MiniDFSCluster binds every daemon to 127.0.0.1 and sets this too; say it anyway: the
    // DataNode's host name is what WebHDFS's 307 redirects point at.
    conf.set("dfs.datanode.hostname", "127.0.0.1");
    conf.setInt("dfs.replication", 1);
    // Permissions stay on (as on a real cluster); the root is opened up below so that test
    // users other than the JVM's own (the HDFS superuser) may create their folders.
    conf.setBoolean("dfs.permissions.enabled", true);

    MiniDFSCluster cluster = new MiniDFSCluster.Builder(conf)
        .nameNodePort(rpcPort)
        .nameNodeHttpPort(httpPort)
        .numDataNodes(1)
        .format(true)
        .manageNameDfsDirs(true)
        .manageDataDfsDirs(true)
        .build();
    AtomicBoolean closed = new AtomicBoolean(false);
    Runnable close = () -> {
      if (closed.compareAndSet(false, true)) {
        System.out.println("MINIDFS_STOPPING");
        System.out.flush();
        cluster.close();
        System.out.println("MINIDFS_STOPPED");
        System.out.flush();
      }
    };
    Runtime.getRuntime().addShutdownHook(new Thread(close, "minidfs-shutdown"));

    cluster.waitActive();
    cluster.waitClusterUp();
    FileSystem fs = cluster.getFileSystem();
    fs.setPermission(new Path("/"), new FsPermission((short) 0777));

    DataNode dn = cluster.getDataNodes().get(0);
    System.out.printf(
        "%s {\"rpcPort\":%d,\"httpPort\":%d,\"dataNodeHttpPort\":%d,\"dataNodePort\":%d,"
            + "\"hadoopVersion\":\"%s\",\"baseDir\":\"%s\",\"wait\":\"%s\"}%n",
        READY,
        cluster.getNameNodePort(),
        cluster.getNameNode().getHttpAddress().getPort(),
        dn.getInfoPort(),
        dn.getXferPort(),
        VersionInfo.getVersion(),
        baseDir.replace("\\", "\\\\").replace("\"", "\\\""),
        waitFor);
    System.out.flush();

    CountDownLatch stop = new CountDownLatch(1);
    if (waitFor.equals("stdin")) {
      Thread reader = new Thread(() -> {
        drain(System.in);
        stop.countDown();
      }, "minidfs-stdin");
      reader.setDaemon(true);
      reader.start();
    }
    // With --wait signal nothing counts down: SIGTERM/SIGINT run the shutdown hook.
    stop.await();
    close.run();
    System.exit(0);
  }

  private static void drain(InputStream in) {
    byte[] buf = new byte[4096];
    try {
      while (in.read(buf) >= 0) {
        // Discard: only the end of the stream matters.
      }
    } catch (IOException e) {
      // A broken stdin means our parent is gone: stop as well.
    }
  }

  private static void usage(String problem) {
    System.err.println("minidfs: " + problem);
    System.err.println(
        "usage: MiniDfs --basedir DIR [--rpc-port N] [--http-port N] [--wait stdin|signal]");
    System.exit(2);
  }
}
