//! Async nodes on a real tokio runtime: a loopback TCP echo server and `tokio::time::sleep`, with the
//! runtime given to the executor; and the clear error (not a hang) without it.

use std::time::Duration;

use flowmem_engine::{ActionError, ActionErrorKind, Executor, RunStatus, Workflow};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn async_nodes_use_tokio_io_and_timers_when_given_the_runtime() {
    let rt = runtime();
    // An echo server on a loopback port, on the runtime.
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                while let Ok(n) = socket.read(&mut buf).await {
                    if n == 0 || socket.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let mut b = Workflow::builder("tokio");
    for i in 0..8u64 {
        b.node_async(format!("echo{i}"), move |ctx| async move {
            let mut stream = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| ActionError::new(format!("connect: {e}")))?;
            let message = format!("ping {i}");
            stream
                .write_all(message.as_bytes())
                .await
                .map_err(|e| ActionError::new(e.to_string()))?;
            let mut back = vec![0u8; message.len()];
            stream
                .read_exact(&mut back)
                .await
                .map_err(|e| ActionError::new(e.to_string()))?;
            ctx.set_output(String::from_utf8(back).unwrap_or_default());
            Ok(())
        });
    }
    b.node_async("nap", |ctx| async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        ctx.set_output(true);
        Ok(())
    });
    b.node("join", |ctx| {
        let mut n = 0u64;
        ctx.for_each_input(|_, v| {
            n += u64::from(v.as_str().is_some_and(|s| s.starts_with("ping")))
        });
        ctx.set_output(n);
        Ok(())
    })
    .after(
        (0..8)
            .map(|i| format!("echo{i}"))
            .chain(["nap".to_string()]),
    );
    let executor = Executor::builder()
        .workers(2)
        .tokio(rt.handle().clone())
        .build();
    // Awaited from the runtime itself, as async code would.
    let report = rt.block_on(executor.submit(&b.build().unwrap()));
    assert_eq!(report.status, RunStatus::Completed, "{report:?}");
    assert_eq!(
        report.output("echo3").and_then(|v| v.as_str()),
        Some("ping 3")
    );
    assert_eq!(report.output("join").and_then(|v| v.as_u64()), Some(8));
    assert_eq!(report.output("nap").and_then(|v| v.as_bool()), Some(true));
}

#[test]
fn without_a_runtime_a_tokio_future_fails_with_a_clear_error() {
    let mut b = Workflow::builder("no-runtime");
    b.node_async("nap", |_| async move {
        tokio::time::sleep(Duration::from_millis(1)).await;
        Ok(())
    });
    let report = Executor::new(1).run(&b.build().unwrap());
    let error = report.node("nap").unwrap().error.clone().unwrap();
    assert_eq!(error.kind(), ActionErrorKind::Panicked);
    assert!(
        error
            .message()
            .contains("Executor::builder().tokio(handle)"),
        "{error}"
    );
}
