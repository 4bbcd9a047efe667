%% erlang_local - Erlang's local message passing on one scheduler, measured
%% like bench/local measures libaemp: one-way throughput of a fresh
%% {ping, I, <<"abcdefghijklmnop">>} per send (libaemp's
%% ["ping", i, "abcdefghijklmnop"]) to a sink process, and ping-pong round
%% trips between two processes.  Run by bench/erlang_local.sh under
%% `erl +S 1`; prints RESULT lines and halts (with 1 on any error).
-module(erlang_local).
-export([run/1]).

%% One-way flow control: the sink acknowledges every ACK_EVERY messages and
%% the sender keeps at most WINDOW unacknowledged, so the sink's mailbox
%% stays bounded (bench/local's producer sends batches of 10,000).
-define(ACK_EVERY, 10000).
-define(WINDOW, 100000).

run([NArg]) ->
    try
        N = list_to_integer(NArg),
        true = N > 0,
        io:format("RESULT erlang_local_oneway ~w msgs/s~n", [round(oneway(N))]),
        Rounds = max(1, N div 4),
        io:format("RESULT erlang_local_pingpong ~w roundtrips/s~n", [round(pingpong(Rounds))]),
        halt(0)
    catch
        Class:Reason ->
            io:format(standard_error, "erlang_local: ~p:~p~n", [Class, Reason]),
            halt(1)
    end.

%% Messages per second from the first send until the sink has all N.
oneway(N) ->
    Self = self(),
    Sink = spawn_link(fun() -> sink(0, N, Self) end),
    T0 = erlang:monotonic_time(microsecond),
    send(Sink, N, 0, 0),
    receive {sunk, N} -> ok end,
    T1 = erlang:monotonic_time(microsecond),
    flush_acks(),
    N / ((T1 - T0) / 1.0e6).

%% Count messages; ack every ACK_EVERY (but the last), report the last.
sink(C, N, Parent) ->
    receive
        {ping, _, _} ->
            case C + 1 of
                N -> Parent ! {sunk, N};
                C1 when C1 rem ?ACK_EVERY =:= 0 -> Parent ! {ack, C1}, sink(C1, N, Parent);
                C1 -> sink(C1, N, Parent)
            end
    end.

%% Send N messages, never more than WINDOW ahead of the last ack.
send(_Sink, N, N, _Acked) -> ok;
send(Sink, N, Sent, Acked) when Sent - Acked < ?WINDOW ->
    Sink ! {ping, Sent, <<"abcdefghijklmnop">>},
    send(Sink, N, Sent + 1, Acked);
send(Sink, N, Sent, _Acked) ->
    receive {ack, C} -> send(Sink, N, Sent, C) end.

flush_acks() ->
    receive {ack, _} -> flush_acks() after 0 -> ok end.

%% Round trips per second: this process and an echo process bounce a ball.
pingpong(Rounds) ->
    Pong = spawn_link(fun pong/0),
    T0 = erlang:monotonic_time(microsecond),
    ping(Pong, Rounds),
    T1 = erlang:monotonic_time(microsecond),
    Pong ! stop,
    Rounds / ((T1 - T0) / 1.0e6).

ping(_Pong, 0) -> ok;
ping(Pong, K) ->
    Pong ! {ball, self()},
    receive ball -> ping(Pong, K - 1) end.

pong() ->
    receive
        {ball, From} -> From ! ball, pong();
        stop -> ok
    end.
