import { shellQuote, submitLine } from '../logic/submitline';
import { IWorkloadSpec } from '../logic/types';

function spec(extra: Partial<IWorkloadSpec>): IWorkloadSpec {
  return { name: 'train-1', project: 'team-a', kind: 'training', resources: {}, ...extra };
}

describe('shellQuote', () => {
  it('leaves plain words and quotes the rest for a POSIX shell', () => {
    expect(shellQuote('python')).toBe('python');
    expect(shellQuote('8Gi')).toBe('8Gi');
    expect(shellQuote('a b')).toBe("'a b'");
    expect(shellQuote('')).toBe("''");
    expect(shellQuote("it's")).toBe(`"it's"`);
    // a program with quotes reads as people write it
    expect(shellQuote("import os; print('rank', os.environ['RANK'])")).toBe(`"import os; print('rank', os.environ['RANK'])"`);
    // but nothing a shell would expand or unescape inside double quotes is put in them
    expect(shellQuote("it's $HOME")).toBe(`'it'"'"'s $HOME'`);
    expect(shellQuote('it\'s "x"')).toBe(`'it'"'"'s "x"'`);
    expect(shellQuote("it's `x` \\ !")).toBe(`'it'"'"'s \`x\` \\ !'`);
    expect(shellQuote('$HOME; rm -rf /')).toBe("'$HOME; rm -rf /'");
    expect(shellQuote('line\nnext')).toBe("'line\nnext'");
  });
});

describe('submitLine', () => {
  it('a training job: name, project, resources, the command as one shell word', () => {
    const { line, omitted } = submitLine(spec({ resources: { gpu: 0.5, gpu_devices: 2, cpu: '500m', memory: '4Gi' }, command: 'python train.py --lr 0.1 && echo "done"' }));
    expect(line).toBe(`runai submit train-1 -p team-a --gpu 0.5 --gpu-devices 2 --cpu 500m --memory 4Gi -- 'python train.py --lr 0.1 && echo "done"'`);
    expect(omitted).toEqual([]);
  });

  it('leaves out what the server filled in by default (priority by kind, zero CPU, no retries)', () => {
    const server = spec({ priority_class: 'train', preemptible: true, backoff_limit: 0, resources: { gpu: 1, cpu: '0', memory: '0', gpu_memory: null, gpu_limit: null, gpu_devices: null }, command: 'echo hi', environment: {}, node_pools: [] });
    expect(submitLine(server).line).toBe("runai submit train-1 -p team-a --gpu 1 -- 'echo hi'");
    const ws = spec({ kind: 'workspace', priority_class: 'build', preemptible: false, command: null });
    expect(submitLine(ws).line).toBe('runai submit train-1 -p team-a --kind workspace');
  });

  it('says a priority or preemptibility that differs from the default', () => {
    expect(submitLine(spec({ priority_class: 'build-preemptible', preemptible: true })).line).toBe('runai submit train-1 -p team-a --priority-class build-preemptible');
    expect(submitLine(spec({ priority_class: 'train', preemptible: false })).line).toBe('runai submit train-1 -p team-a --non-preemptible');
    expect(submitLine(spec({ kind: 'workspace', priority_class: 'build', preemptible: true })).line).toBe('runai submit train-1 -p team-a --kind workspace --preemptible');
  });

  it('a distributed job and an inference endpoint with their pod counts', () => {
    expect(submitLine(spec({ kind: 'distributed', workers: 3, master: true, min_available: 4, resources: { gpu: 1 }, command: ['torchrun', 'train.py'] })).line).toBe(
      'runai submit train-1 -p team-a --kind distributed --gpu 1 --workers 3 -- torchrun train.py'
    );
    expect(submitLine(spec({ kind: 'distributed', workers: 3, min_available: 2 })).line).toContain('--workers 3 --min-available 2');
    expect(submitLine(spec({ kind: 'inference', min_replicas: 1, max_replicas: 3, target_concurrency: 4 } as any)).line).toBe(
      'runai submit train-1 -p team-a --kind inference --max-replicas 3'
    );
  });

  it('environment, data, credentials, pools, image and dirs, each value quoted', () => {
    const { line } = submitLine(
      spec({
        resources: { gpu_memory: '8Gi' },
        environment: { LR: '0.1', GREETING: "it's fine" },
        data_sources: ['imagenet'],
        credentials: ['hf-token'],
        node_pools: ['a100', 'default'],
        image: 'pytorch/pytorch:2.5',
        working_dir: '/home/me/my project',
        command: ['python', '-c', 'print(1)']
      })
    );
    expect(line).toBe(
      `runai submit train-1 -p team-a --gpu-memory 8Gi --node-pools a100,default --image pytorch/pytorch:2.5 --working-dir '/home/me/my project' -e LR=0.1 -e "GREETING=it's fine" --data-source imagenet --credential hf-token -- python -c 'print(1)'`
    );
  });

  it('names what the CLI cannot say', () => {
    expect(submitLine(spec({ kind: 'distributed', workers: 1, master_resources: { gpu: 0 }, master: false })).omitted).toEqual(['master_resources', 'master']);
    expect(submitLine(spec({ kind: 'inference', target_concurrency: 8 } as any)).omitted).toEqual(['target_concurrency']);
  });
});
