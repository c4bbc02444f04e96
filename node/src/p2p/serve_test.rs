use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use consensus::Height;
use ledger::CertifiedBlock;
use libp2p::PeerId;

use super::{CONCURRENCY, Job, Read, Served, read_blocks, spawn};
use crate::p2p::{
    protocol::{Response, SYNC_BATCH_MAX},
    test_support::Chain,
};

fn heights(blocks: &[CertifiedBlock]) -> Vec<Height> {
    blocks.iter().map(|certified| certified.block.header.height).collect()
}

#[test]
fn block_reads_stop_at_the_count_the_batch_limit_the_size_budget_and_the_head() {
    let chain = Chain::new(300, Duration::ZERO);
    let size = chain.block_size();
    let (blocks, bytes) = read_blocks(&chain, 5, 3, usize::MAX);
    assert_eq!((heights(&blocks), bytes), (vec![5, 6, 7], 3 * size));
    assert_eq!(read_blocks(&chain, 1, u32::MAX, usize::MAX).0.len(), SYNC_BATCH_MAX as usize);
    assert_eq!(heights(&read_blocks(&chain, 10, 100, 4 * size - 1).0), vec![10, 11, 12]);
    assert_eq!(heights(&read_blocks(&chain, 299, 100, usize::MAX).0), vec![299, 300]);
    assert!(read_blocks(&chain, 301, 100, usize::MAX).0.is_empty());
    assert_eq!(heights(&read_blocks(&chain, 0, 2, usize::MAX).0), vec![1, 2], "height 0 has no certificate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_answers_every_job_off_the_caller_with_bounded_concurrency() {
    let chain = Arc::new(Chain::new(50, Duration::from_millis(5)));
    let size = chain.block_size();
    let (jobs, mut served) = spawn::<usize>(chain.clone(), 1 << 20);
    let peer = PeerId::random();
    let count = 4 * CONCURRENCY;
    let work = async {
        for reply in 0..count {
            let read = if reply == 0 { Read::Head } else { Read::Blocks { from: 1, count: 2 } };
            jobs.send(Job { peer, read, reply }).await.expect("server running");
        }
        let mut answers: Vec<Served<usize>> = Vec::new();
        while answers.len() < count {
            answers.push(served.recv().await.expect("server running"));
        }
        answers
    };
    let mut answers = tokio::time::timeout(Duration::from_secs(60), work).await.expect("the server answered in time");
    answers.sort_by_key(|served| served.reply);
    assert_eq!(answers[0].response, Some(Response::Status { head: 50 }));
    for served in &answers[1..] {
        assert_eq!(served.peer, peer);
        assert_eq!(served.bytes, 2 * size);
        let Some(Response::Blocks(blocks)) = &served.response else { panic!("not blocks: {:?}", served.response) };
        assert_eq!(heights(blocks), vec![1, 2]);
    }
    let most = chain.most_running.load(Ordering::SeqCst);
    assert!(most <= CONCURRENCY, "{most} reads ran at once");
}
